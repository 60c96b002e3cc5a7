package engine

import (
	"fmt"
	"math"
	"testing"
	"time"
)

// TestNativeCompareMatchesExpr: a comparison of a path with a constant
// evaluated natively (cmpNode) gives what its compiled expr program gives,
// and reports an error exactly when the program does, for every operator,
// either order, and values of every type an event or fact may hold.
func TestNativeCompareMatchesExpr(t *testing.T) {
	clock := NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	native := &Compiler{Clock: clock}
	program := &Compiler{Clock: clock, noNative: true}
	consts := []string{"1", "1.0", "-0", "-0.0", "0", "-1.5", "-2", "2", "9007199254740993", `"1"`, `"x"`, `""`, "true", "false"}
	values := []any{nil, 1, int64(1), 1.0, math.Copysign(0, -1), 0, -1.5, 2.0, int64(9007199254740993), float64(9007199254740992),
		uint(1), uint64(math.MaxUint64), int8(-1), float32(1), "1", "x", "", true, false,
		[]any{1.0}, map[string]any{"x": 1.0}, time.Second, json1("1")}
	var checked int
	for _, op := range []string{"==", "!=", "<", "<=", ">", ">="} {
		for _, c := range consts {
			for _, src := range []string{"event.v " + op + " " + c, c + " " + op + " fact.v"} {
				nc, err := native.CompileCondition(src)
				if err != nil {
					// Both must reject it.
					if _, err2 := program.CompileCondition(src); err2 == nil {
						t.Errorf("%s: native rejects (%v), the program compiles", src, err)
					}
					continue
				}
				if _, ok := nc.root.(cmpNode); !ok {
					t.Fatalf("%s: not compiled natively (%T)", src, nc.root)
				}
				pc, err := program.CompileCondition(src)
				if err != nil {
					t.Errorf("%s: the program does not compile: %v", src, err)
					continue
				}
				for _, v := range append(values, "missing") {
					ev := map[string]any{"v": v}
					if v == "missing" {
						ev = map[string]any{}
					}
					var nerr, perr int
					ns := newEvalState(func(error) { nerr++ })
					ps := newEvalState(func(error) { perr++ })
					ns.bind(ev, noBindings, nil)
					ps.bind(ev, noBindings, nil)
					got, want := nc.eval(ns), pc.eval(ps)
					if got != want || (nerr > 0) != (perr > 0) {
						t.Errorf("%s with v=%#v: native %v (errors %d), program %v (errors %d)", src, v, got, nerr, want, perr)
					}
					checked++
				}
			}
		}
	}
	if checked < 1000 {
		t.Fatalf("only %d cases checked", checked)
	}
}

type json1 string

func (j json1) String() string { return fmt.Sprint(string(j)) }
