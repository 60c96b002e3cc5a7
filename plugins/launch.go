package plugins

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/rulebook-dev/rulebook/plugins/proto"
)

// clientConfig is how both hosts (actions and sources) start the plugin
// process of c, whose file has the sha256 sum: the plugin handshake at
// this engine's protocol version with set, gRPC over mutual TLS, the
// declared checksum checked now and again by go-plugin right before exec
// (narrowing the window in which the file could be swapped), and the
// plugin's own state directory under stateRoot (none when stateRoot is
// empty) in its environment. what names the plugin in errors.
func clientConfig(what string, c candidate, sum string, set goplugin.PluginSet, startTimeout time.Duration, log hclog.Logger, stateRoot string) (*goplugin.ClientConfig, error) {
	cfg := &goplugin.ClientConfig{
		HandshakeConfig:  proto.Handshake(proto.ProtocolVersion),
		VersionedPlugins: map[int]goplugin.PluginSet{proto.ProtocolVersion: set},
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         true,
		StartTimeout:     startTimeout,
		Logger:           log,
	}
	if c.checksum != "" {
		if sum != c.checksum {
			return nil, fmt.Errorf("%s: %w: %q has sha256 %s, but %s was declared; refusing to start it",
				what, ErrChecksumMismatch, c.path, sum, c.checksum)
		}
		want, _ := hex.DecodeString(c.checksum)
		cfg.SecureConfig = &goplugin.SecureConfig{Checksum: want, Hash: sha256.New()}
	}
	stateDir := ""
	if stateRoot != "" {
		stateDir = filepath.Join(stateRoot, c.name)
		if err := os.MkdirAll(stateDir, 0o700); err != nil {
			return nil, fmt.Errorf("%s: state dir: %w", what, err)
		}
	}
	cmd := exec.Command(c.path)
	cmd.Env = append(os.Environ(), proto.StateDirEnv+"="+stateDir)
	cfg.Cmd = cmd
	cfg.SkipHostEnv = true // cmd.Env already has it
	return cfg, nil
}
