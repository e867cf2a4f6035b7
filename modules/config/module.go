package config

import (
	"go.uber.org/fx"
)

// Module provides a Loader and the initial *Config. It needs Env (the
// SIDECAR_* settings, read by the command before the app is built, since
// they also set fx's timeouts); supply Flags to override the config path
// from the command line, and a TemplateChecker to have templates parsed at
// load time.
var Module = fx.Module("config",
	fx.Provide(
		NewLoader,
		New,
	),
)

// Flags are the command-line settings that override the environment.
type Flags struct {
	// ConfigPath is --config; empty means SIDECAR_CONFIG or the default.
	ConfigPath string
}

// Path is the config file to load: the flag, else SIDECAR_CONFIG.
func (f Flags) Path(e Env) string {
	if f.ConfigPath != "" {
		return f.ConfigPath
	}
	if e.ConfigPath != "" {
		return e.ConfigPath
	}
	return DefaultConfigPath
}

// LoaderParams are NewLoader's inputs.
type LoaderParams struct {
	fx.In

	Templates TemplateChecker `optional:"true"`
}

// NewLoader returns the Loader used for the initial load and every reload.
func NewLoader(p LoaderParams) *Loader {
	return &Loader{Templates: p.Templates}
}

// Params are New's inputs.
type Params struct {
	fx.In

	Env    Env
	Flags  Flags `optional:"true"`
	Loader *Loader
}

// New loads the config file named by the flags or environment.
func New(p Params) (*Config, error) {
	return p.Loader.Load(p.Flags.Path(p.Env))
}
