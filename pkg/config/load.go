package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// Duration is a time.Duration written as a Go duration string ("5m", "90s")
// in TOML, which is what operators read and write.
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (use e.g. \"30s\", \"5m\")", b)
	}
	*d = Duration(v)
	return nil
}

// Std returns the value as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Load reads the config file at path over the defaults. When explicit is
// false (the path is the default one), a missing file means defaults.
func Load(path string, explicit bool) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !explicit {
			return Default(), nil
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes a TOML document over the defaults and validates the result.
// Unknown keys and ill-typed values are errors naming the key and line.
func Parse(data []byte) (*Config, error) {
	cfg := Default()
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		return nil, describeDecodeError(err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func describeDecodeError(err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		msgs := make([]string, 0, len(strict.Errors))
		for i := range strict.Errors {
			e := &strict.Errors[i]
			row, _ := e.Position()
			msgs = append(msgs, fmt.Sprintf("line %d: unknown key %s", row, strings.Join(e.Key(), ".")))
		}
		return fmt.Errorf("config: %s", strings.Join(msgs, "; "))
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		if key := de.Key(); len(key) > 0 {
			return fmt.Errorf("config: line %d: key %s: %s", row, strings.Join(key, "."), de.Error())
		}
		return fmt.Errorf("config: line %d: %s", row, de.Error())
	}
	return fmt.Errorf("config: %w", err)
}

// registryExample documents the inline registry tables, which are empty by
// default and so would otherwise not appear in the printed config at all.
const registryExample = `
  # The inline tables below are examples of the form; by default there are none.
  # [registry.mirrors."docker.io"]
  #   endpoint = ["https://mirror.example"]
  # [registry.configs."192.168.0.2".tls]
  #   insecure_skip_verify = true
  # [registry.configs."192.168.0.2".auth]
  #   username = "admin"
  #   password = "..."
`

// Encode writes cfg as a complete, commented TOML document.
func (c *Config) Encode(w io.Writer) error {
	var buf bytes.Buffer
	buf.WriteString("# cri-rt configuration. Every key is shown with its current value.\n\n")
	enc := toml.NewEncoder(&buf).SetIndentTables(true).SetTablesInline(false)
	if err := enc.Encode(c); err != nil {
		return err
	}
	if len(c.Registry.Mirrors) == 0 && len(c.Registry.Configs) == 0 {
		buf.WriteString(registryExample)
	}
	_, err := w.Write(buf.Bytes())
	return err
}
