package proto

import goplugin "github.com/hashicorp/go-plugin"

// ProtocolVersion is the version of the plugin protocol this engine and the
// SDK speak. The engine refuses a plugin built for another version.
const ProtocolVersion = 1

// PluginKey is the name under which a plugin serves its ActionPlugin
// service in go-plugin's plugin set.
const PluginKey = "action"

// Magic cookie: a plugin binary started by hand (not by the engine) sees no
// cookie and tells the user it is a plugin, instead of waiting forever.
const (
	MagicCookieKey   = "RULEBOOK_PLUGIN_MAGIC_COOKIE"
	MagicCookieValue = "8d0c6a0e3f1b4d1e9f2c7a5b6e4d3c2b"
)

// StateDirEnv names the environment variable through which the engine gives
// each plugin a private directory for durable state.
const StateDirEnv = "RULEBOOK_PLUGIN_STATE_DIR"

// Handshake returns the go-plugin handshake for protocol version v.
func Handshake(v uint) goplugin.HandshakeConfig {
	return goplugin.HandshakeConfig{
		ProtocolVersion:  v,
		MagicCookieKey:   MagicCookieKey,
		MagicCookieValue: MagicCookieValue,
	}
}
