package eda

// actionAliases maps an action name older ansible-rulebook releases accept
// to the one rulebook knows: assert_fact is set_fact's first name, with the
// same arguments (fact, ruleset).
var actionAliases = map[string]string{
	"assert_fact": "set_fact",
}

// ActionName returns the action rulebook runs for the EDA action name typ:
// typ itself unless typ is an alias of another action.
func ActionName(typ string) string {
	if to, ok := actionAliases[typ]; ok {
		return to
	}
	return typ
}
