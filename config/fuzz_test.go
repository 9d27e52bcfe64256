package config

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("../config.example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	for _, s := range []string{
		"",
		"inbox: /in\n",
		"inbox: /in\nworkers: 0\nsettle: x\nzoho:\n  data_center: us\n",
		"inbox: ${CRMDROP_TEST_DIR}\nzoho:\n  client_secret: ${CRMDROP_CLIENT_SECRET}\nwatch: ${CRMDROP_CLIENT_SECRET}\n",
		"inbox: /in\nzoho:\n  refresh_token: a${b\n",
		"inbox: /in\nignore: [\"[\", \"$${x}\", ${UNSET}]\nmax_file_size: 5 GiB\n",
		"a: &a [*a]\n",
		"inbox: &x /in\nstate_dir: *x\nlog: *x\n",
		"? [a]\n: b\n<<: {inbox: /in}\n",
		"inbox: /in\n---\ninbox: /in\n",
		"{inbox: /in, admin_listen: '0.0.0.0:1', admin_allow_remote: on}",
	} {
		f.Add([]byte(s))
	}
	env := map[string]string{
		"CRMDROP_CLIENT_SECRET": "fuzz-Secret$1",
		"CRMDROP_REFRESH_TOKEN": "fuzz-Token${X}",
		"CRMDROP_TEST_DIR":      "/srv/in",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(bytes.NewReader(data), lookup)
		if err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("Parse(%q) succeeded but Validate() = %v", data, verr)
			}
			c.Zoho.Endpoints()
			return
		}
		if err.Error() == "" {
			t.Fatalf("Parse(%q) returned an empty error", data)
		}
		// No secret the config ends up holding may appear in its errors.
		dc, d := decode(data, lookup)
		msg := d.finish("config.yaml", &dc).Error()
		for _, s := range dc.Secrets() {
			if len(s) < 4 || strings.ContainsAny(s, "[]") || strings.Contains("[redacted]", s) {
				continue // too short to redact, or could be formed by the redaction marker
			}
			if strings.Contains(msg, s) {
				t.Fatalf("Parse(%q) error %q contains secret %q", data, msg, s)
			}
		}
	})
}
