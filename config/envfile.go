package config

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// The env file (service.env_file) holds the secrets a service needs when its manager
// gives it no environment (a Windows service, or a systemd unit without
// Environment=). Its path lives in the config, whose ${VAR}s need the variables the
// file defines: so the service section is read on its own first (PeekService), the
// file loaded (LoadEnvFile), and only then the whole config (Load).

// maxEnvFileSize bounds what LoadEnvFile reads: a real env file is a few lines.
const maxEnvFileSize = 1 << 20

// maxEnvProblems bounds the lines of one env file error.
const maxEnvProblems = 20

// PeekService reads only the service: section of the config file at path, without
// validating or expanding anything else, so that it works before the variables the
// rest of the config refers to are set. ${VAR} in the section's own values is
// expanded from the process environment. An empty or missing name is "crmdrop";
// env_file is made absolute relative to the folder holding the config file, as Load
// does. Values of the wrong kind are left empty: Load reports them. The error is a
// YAML syntax error, an unset variable, or an unreadable file, one line each, naming
// the file. PeekService is safe for concurrent use.
func PeekService(path string) (Service, error) {
	svc := Service{Name: Default().Service.Name}
	data, err := readFile(path)
	if err != nil {
		return svc, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return svc, fmt.Errorf("read config: %w", err)
	}
	d := &decoder{lookup: os.LookupEnv, lines: map[string]int{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		d.syntax(err)
		return svc, joinProblems(d.probs, path, nil, nil)
	}
	root := deref(&doc)
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = deref(root.Content[0])
	}
	sec := mapValue(root, "service")
	if sec == nil {
		return svc, nil
	}
	for _, f := range []struct {
		key string
		dst *string
	}{
		{"name", &svc.Name},
		{"display_name", &svc.DisplayName},
		{"description", &svc.Description},
		{"user", &svc.User},
		{"env_file", &svc.EnvFile},
	} {
		n := mapValue(sec, f.key)
		if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
			continue
		}
		if v, ok := d.expand(n.Value, "service."+f.key, n.Line); ok && v != "" {
			*f.dst = v
		}
	}
	if err := joinProblems(d.probs, path, nil, nil); err != nil {
		return svc, err
	}
	switch {
	case strings.TrimSpace(svc.EnvFile) == "":
		svc.EnvFile = ""
	case filepath.IsAbs(svc.EnvFile):
		svc.EnvFile = filepath.Clean(svc.EnvFile)
	default:
		svc.EnvFile = filepath.Join(filepath.Dir(abs), svc.EnvFile)
	}
	return svc, nil
}

// EnvFile returns the absolute path of service.env_file in the config file at path,
// or "" when it is not set. It reads nothing else of the config (see PeekService).
func EnvFile(path string) (string, error) {
	svc, err := PeekService(path)
	return svc.EnvFile, err
}

// deref follows a YAML alias to the node it names.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// mapValue returns the value under key in the mapping n, or nil.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return deref(n.Content[i+1])
		}
	}
	return nil
}

// LoadEnvFile reads the env file at path and calls setenv for each variable that
// lookup does not already report as set: the real environment (an administrator's
// export, systemd's EnvironmentFile=) wins over the file. Nothing is set unless the
// whole file parses. Errors name the file and line but never a value (the file holds
// secrets); an unreadable file wraps the fs error (errors.Is(err, fs.ErrPermission)).
//
// The format is the common subset of systemd's EnvironmentFile=, Docker's --env-file
// and shell: KEY=value lines; blank lines and lines starting with # are skipped; an
// "export " prefix is allowed; a value in double quotes may use \" and \\ (any other
// backslash is kept, for Windows paths); a value in single quotes is taken as is;
// an unquoted value is the rest of the line without surrounding blanks ("#" in it is
// kept: secrets may contain it). CRLF line ends and a UTF-8 byte order mark (Notepad)
// are accepted. When a key repeats, the last line wins.
func LoadEnvFile(path string, setenv func(k, v string) error, lookup func(string) (string, bool)) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read env file (service.env_file): %w", err)
	}
	defer f.Close()
	vars, err := parseEnv(io.LimitReader(f, maxEnvFileSize+1))
	if err != nil {
		return prefixLines(path, err)
	}
	for _, v := range vars {
		if _, set := lookup(v.key); set {
			continue
		}
		if err := setenv(v.key, v.value); err != nil {
			return fmt.Errorf("%s line %d: cannot set %s: %w", path, v.line, v.key, err)
		}
	}
	return nil
}

// CheckEnvFilePerm returns an error, meant as a warning, when the env file at path
// may be read by users other than its owner: it holds the Zoho secrets. On Windows
// it returns nil: access there is governed by ACLs, which file modes do not show.
func CheckEnvFilePerm(path string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("env file (service.env_file): %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("env file %s holds secrets but other users may read it (mode %04o); run: chmod 600 %s", path, perm, path)
	}
	return nil
}

// envVar is one assignment of an env file.
type envVar struct {
	key, value string
	line       int
}

// parseEnv reads env file lines (format: LoadEnvFile). Repeated keys keep their last
// value, at the position of their first line. Errors hold line numbers and fixed
// texts, never the file's content.
func parseEnv(r io.Reader) ([]envVar, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxEnvFileSize+1)
	var (
		vars  []envVar
		index = map[string]int{}
		errs  []error
		size  int
		n     int
	)
	for sc.Scan() {
		n++
		size += len(sc.Bytes()) + 1
		if size > maxEnvFileSize+1 {
			return nil, errors.New("larger than 1 MiB; is this the right file?")
		}
		text := strings.TrimSuffix(sc.Text(), "\r")
		if n == 1 {
			text = strings.TrimPrefix(text, "\uFEFF")
		}
		k, v, ok, msg := parseEnvLine(text)
		if msg != "" {
			if len(errs) < maxEnvProblems {
				errs = append(errs, fmt.Errorf("line %d: %s", n, msg))
			}
			continue
		}
		if !ok {
			continue
		}
		if i, dup := index[k]; dup {
			vars[i].value, vars[i].line = v, n
			continue
		}
		index[k] = len(vars)
		vars = append(vars, envVar{key: k, value: v, line: n})
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, errors.New("larger than 1 MiB; is this the right file?")
		}
		return nil, err
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return vars, nil
}

// parseEnvLine parses one line. ok is false for a blank or comment line; msg says
// what is wrong with a bad one, without quoting it.
func parseEnvLine(line string) (key, value string, ok bool, msg string) {
	s := strings.Trim(line, " \t")
	if s == "" || s[0] == '#' {
		return "", "", false, ""
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "", "", false, "contains a NUL byte; save the file as plain text"
	}
	if rest, found := strings.CutPrefix(s, "export"); found && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
		s = strings.TrimLeft(rest, " \t")
	}
	k, v, found := strings.Cut(s, "=")
	if !found {
		return "", "", false, "expected KEY=value"
	}
	k = strings.Trim(k, " \t")
	if !validEnvName(k) {
		// The name is not echoed: a pasted secret containing "=" would land here.
		return "", "", false, "the name before \"=\" must be letters, digits and _, not starting with a digit"
	}
	v = strings.Trim(v, " \t")
	if v == "" {
		return k, "", true, ""
	}
	var rest string
	switch v[0] {
	case '"':
		var b strings.Builder
		i := 1
		for ; i < len(v) && v[i] != '"'; i++ {
			if v[i] == '\\' && i+1 < len(v) && (v[i+1] == '"' || v[i+1] == '\\') {
				i++
			}
			b.WriteByte(v[i])
		}
		if i >= len(v) {
			return "", "", false, "the double quote is not closed (a value must fit on one line)"
		}
		value, rest = b.String(), v[i+1:]
	case '\'':
		end := strings.IndexByte(v[1:], '\'')
		if end < 0 {
			return "", "", false, "the single quote is not closed (a value must fit on one line)"
		}
		value, rest = v[1:1+end], v[2+end:]
	default:
		return k, v, true, ""
	}
	if rest = strings.TrimLeft(rest, " \t"); rest != "" && rest[0] != '#' {
		return "", "", false, "text after the closing quote; quote the whole value"
	}
	return k, value, true, ""
}

// prefixLines puts path before every line of err: "path line 3: ..." or "path: ...".
func prefixLines(path string, err error) error {
	lines := strings.Split(err.Error(), "\n")
	errs := make([]error, len(lines))
	for i, l := range lines {
		sep := ": "
		if strings.HasPrefix(l, "line ") {
			sep = " "
		}
		errs[i] = errors.New(path + sep + l)
	}
	return errors.Join(errs...)
}

// CheckConfigPerm reports a config file other users may read when it holds a secret
// written out literally (the ${VAR} form is the recommended one and is not a finding).
// Windows ACLs do not map onto mode bits, so it says nothing there.
func CheckConfigPerm(path string, c Config) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o077 == 0 {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	for _, s := range c.Secrets() {
		if strings.Contains(string(data), s) {
			return fmt.Errorf("%s is readable by other users and holds secrets; chmod 600 it (or move the secrets to service.env_file)", path)
		}
	}
	return nil
}
