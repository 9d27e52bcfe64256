package config

import (
	"bytes"
	"crmdrop/internal/editdist"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	yaml "go.yaml.in/yaml/v3"
)

// maxProblems bounds the lines of one error: past that, the file is most
// likely not a crmdrop config at all.
const maxProblems = 50

// maxConfigSize bounds what Parse reads: a real config is a few KiB, so
// anything bigger is the wrong file.
const maxConfigSize = 1 << 20

// Parse reads a config.yaml from r: Default() overlaid with the file's keys,
// ${VAR} references expanded through lookupEnv (nil: no variables defined),
// then validated. The error lists every problem at once (errors.Join), one
// line each: "config.yaml line 7: workers: must be between 1 and 64, got 0".
// Unknown keys are errors. Secret values never appear in errors. On error
// the returned Config is the zero value. Relative paths are left relative
// (Load resolves them). Parse is safe for concurrent use.
//
// Only the braced form ${NAME} is expanded, in every scalar value (not in
// keys), once (a variable's value is not expanded again); "$$" before "{"
// writes a literal "${". A lone "$" or "$x" is kept as is, so a secret may
// contain "$".
func Parse(r io.Reader, lookupEnv func(string) (string, bool)) (Config, error) {
	const name = "config.yaml"
	data, err := io.ReadAll(io.LimitReader(r, maxConfigSize+1))
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	if len(data) > maxConfigSize {
		return Config{}, fmt.Errorf("%s: larger than 1 MiB; is this the right file?", name)
	}
	c, d := decode(data, lookupEnv)
	if err := d.finish(name, &c); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Load reads and parses the config file at path with the process
// environment (os.LookupEnv), then makes inbox, state_dir, log.file and
// service.env_file absolute, relative to the folder holding the file, so the
// daemon never depends on its working directory (a Windows service starts in
// System32). An empty state_dir becomes "state" beside the file. Errors name
// the file as given in path. Load is safe for concurrent use.
func Load(path string) (Config, error) { return LoadWith(path, os.LookupEnv) }

// LoadWith is Load with ${VAR} looked up by lookupEnv instead of the process
// environment (the admin commands also read the service's env file).
func LoadWith(path string, lookupEnv func(string) (string, bool)) (Config, error) {
	data, err := readFile(path)
	if err != nil {
		return Config{}, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	c, d := decode(data, lookupEnv)
	c.resolvePaths(filepath.Dir(abs))
	if err := d.finish(path, &c); err != nil {
		return Config{}, err
	}
	return c, nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("read config: %w; run crmdrop as a user that may read it", err)
		}
		return nil, fmt.Errorf("read config: %w; pass -c with the path to config.yaml", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config: %w; pass -c with the path to config.yaml", err)
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("read config: %s is larger than 1 MiB; pass -c with the path to config.yaml", path)
	}
	return data, nil
}

func (c *Config) resolvePaths(dir string) {
	abs := func(p string) string {
		if strings.TrimSpace(p) == "" {
			return p
		}
		if filepath.IsAbs(p) {
			return filepath.Clean(p)
		}
		return filepath.Join(dir, p)
	}
	c.Inbox = abs(c.Inbox)
	if c.StateDir == "" {
		c.StateDir = filepath.Join(dir, "state")
	} else {
		c.StateDir = abs(c.StateDir)
	}
	c.Log.File = abs(c.Log.File)
	c.Service.EnvFile = abs(c.Service.EnvFile)
}

// decoder walks the YAML node tree into a Config itself, rather than using
// yaml's Decode, so that it can expand ${VAR} with the key in hand, reject
// unknown and duplicate keys, and record every problem with its line instead
// of stopping at the first.
type decoder struct {
	lookup func(string) (string, bool)
	lines  map[string]int // key path -> line, for locating validation problems
	probs  []problem
	broken bool // no usable document: validating the defaults would only add noise
}

// decode returns Default() overlaid with data and the decoder holding the
// problems found so far (validation happens in finish).
func decode(data []byte, lookupEnv func(string) (string, bool)) (Config, *decoder) {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	c := Default()
	d := &decoder{lookup: lookupEnv, lines: map[string]int{}}

	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) { // EOF: an empty file, all defaults
			d.syntax(err)
		}
		return c, d
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.add(extra.Line, "", "holds a second YAML document (after ---); keep everything in one")
	} else if !errors.Is(err, io.EOF) {
		d.syntax(err)
	}
	if len(doc.Content) > 0 {
		d.value(doc.Content[0], reflect.ValueOf(&c).Elem(), "", doc.Content[0].Line)
	}
	return c, d
}

// finish validates c and joins every problem into one error, or nil.
func (d *decoder) finish(file string, c *Config) error {
	ps := d.probs
	if !d.broken {
		ps = append(ps, c.problems()...)
	}
	return joinProblems(ps, file, d.lines, c.Secrets())
}

func (d *decoder) add(line int, key, format string, args ...any) {
	d.probs = append(d.probs, problem{line: line, key: key, msg: fmt.Sprintf(format, args...)})
}

// syntax records a YAML syntax error ("yaml: line 3: did not find ...").
func (d *decoder) syntax(err error) {
	d.broken = true
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			if l, err := strconv.Atoi(n); err == nil {
				line, msg = l, after
			}
		}
	}
	switch msg {
	case "did not find expected <document start>", "did not find expected node content",
		"did not find expected key", "did not find expected ',' or ']'",
		"did not find expected ',' or '}'", "did not find expected '-' indicator":
		// yaml/v3 numbers its parser's (not its scanner's) errors from 0.
		line++
	}
	d.add(line, "", "not valid YAML: %s", msg)
}

// value decodes n into v. line is where the key (or list item) is.
func (d *decoder) value(n *yaml.Node, v reflect.Value, key string, line int) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		// "key:" with nothing after it: empty for a value, but an empty
		// section keeps its defaults.
		if v.Kind() != reflect.Struct {
			v.SetZero()
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.mapping(n, v, key, line)
	case reflect.Slice:
		d.list(n, v, key, line)
	default:
		if s, ok := d.scalar(n, key, line); ok {
			d.set(s, v, key, line)
		}
	}
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, key string, line int) {
	if n.Kind != yaml.MappingNode {
		if key == "" {
			d.broken = true
			d.add(n.Line, "", "must be a mapping of keys such as \"inbox: /srv/crmdrop/inbox\"")
		} else {
			d.add(line, key, "must be a section of indented \"key: value\" lines, not %s", kindName(n))
		}
		return
	}
	t := v.Type()
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		if kn.Kind != yaml.ScalarNode {
			d.add(kn.Line, key, "keys must be plain names, not %s", kindName(kn))
			continue
		}
		if kn.ShortTag() == "!!merge" {
			d.add(kn.Line, key, "merge keys (<<) are not supported; write the keys out")
			continue
		}
		name := kn.Value
		k := joinKey(key, shorten(name))
		idx, ok := fieldIndex(t, name)
		if !ok {
			if len(d.probs) >= maxProblems { // not shown anyway: spare the edit distances
				d.add(kn.Line, k, "unknown key")
			} else if s := suggest(t, name); s != "" {
				d.add(kn.Line, k, "unknown key; did you mean %s?", s)
			} else {
				d.add(kn.Line, k, "unknown key (config.example.yaml lists every key)")
			}
			continue
		}
		if first, dup := seen[name]; dup {
			d.add(kn.Line, k, "set twice (first on line %d); keep one", first)
			continue
		}
		seen[name] = kn.Line
		d.lines[k] = kn.Line
		d.value(vn, v.Field(idx), k, kn.Line)
	}
}

func (d *decoder) list(n *yaml.Node, v reflect.Value, key string, line int) {
	if n.Kind != yaml.SequenceNode {
		d.add(line, key, "must be a list such as [\"a\", \"b\"], not %s", kindName(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	before := len(d.probs)
	for i, item := range n.Content {
		k := fmt.Sprintf("%s[%d]", key, i)
		d.lines[k] = item.Line
		d.value(item, out.Index(i), k, item.Line)
	}
	if len(d.probs) == before { // a partial list would shift the indexes in later messages
		v.Set(out)
	}
}

// scalar returns n's text with ${VAR} expanded.
func (d *decoder) scalar(n *yaml.Node, key string, line int) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.add(line, key, "must be a single value, not %s", kindName(n))
		return "", false
	}
	return d.expand(n.Value, key, line)
}

// set parses s into v by v's type; every int64 in Config is a byte size.
func (d *decoder) set(s string, v reflect.Value, key string, line int) {
	switch {
	case v.Type() == reflect.TypeFor[time.Duration]():
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.add(line, key, "must be a duration such as 5s, 10m or 1h30m, got %q", s)
			return
		}
		v.SetInt(int64(dur))
	case v.Kind() == reflect.Int64:
		n, err := parseSize(s)
		if err != nil {
			d.add(line, key, "%v", err)
			return
		}
		v.SetInt(n)
	case v.Kind() == reflect.Int:
		n, err := strconv.Atoi(s)
		if err != nil {
			d.add(line, key, "must be a whole number, got %q", s)
			return
		}
		v.SetInt(int64(n))
	case v.Kind() == reflect.Bool:
		switch strings.ToLower(s) {
		case "true", "yes", "on":
			v.SetBool(true)
		case "false", "no", "off":
			v.SetBool(false)
		default:
			d.add(line, key, "must be true or false, got %q", s)
		}
	case v.Kind() == reflect.String:
		v.SetString(s)
	default:
		// A new Config field of a type this walker does not know: the
		// example test fails on it before it ships.
		panic(fmt.Sprintf("config: %s has unsupported type %s", key, v.Type()))
	}
}

// expand replaces each ${NAME} in s. For the secret keys, nothing of the
// value is echoed, except the variable's name when the whole value is one
// ${NAME} (then no part of the secret is in it).
func (d *decoder) expand(s, key string, line int) (string, bool) {
	if !strings.Contains(s, "$") {
		return s, true
	}
	secret := key == "zoho.client_secret" || key == "zoho.refresh_token"
	whole := strings.HasPrefix(s, "${") && strings.HasSuffix(s, "}") && validEnvName(s[2:len(s)-1])
	quiet := secret && !whole
	var b strings.Builder
	ok := true
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				d.add(line, key, `has "${" without a closing "}"; write "$${" for a literal "${"`)
				return "", false
			}
			name := s[i+2 : i+2+end]
			i += 2 + end + 1
			if !validEnvName(name) {
				ok = false
				if quiet {
					d.add(line, key, `has a "${...}" that is not a variable name; write "$${" for a literal "${"`)
				} else {
					d.add(line, key, `"${%s}" is not a variable name (letters, digits and _, not starting with a digit); write "$${" for a literal "${"`, shorten(name))
				}
				continue
			}
			val, found := d.lookup(name)
			if !found {
				ok = false
				if quiet {
					d.add(line, key, "refers to an environment variable that is not set; set it in the environment or in the service's env file (service.env_file)")
				} else {
					d.add(line, key, "environment variable %s is not set; set it in the environment or in the service's env file (service.env_file)", name)
				}
				continue
			}
			b.WriteString(val)
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), ok
}

func validEnvName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return s != ""
}

// parseSize reads a byte size: a whole number with an optional unit B, KB,
// MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024), any case.
func parseSize(s string) (int64, error) {
	bad := fmt.Errorf("must be a size such as 100MiB or 20MB (units B, KB, MB, GB, KiB, MiB, GiB), got %q", s)
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, bad
	}
	var mult int64
	switch strings.ToLower(strings.TrimSpace(t[i:])) {
	case "", "b":
		mult = 1
	case "kb":
		mult = 1e3
	case "mb":
		mult = 1e6
	case "gb":
		mult = 1e9
	case "kib":
		mult = 1 << 10
	case "mib":
		mult = 1 << 20
	case "gib":
		mult = 1 << 30
	default:
		return 0, bad
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("is too large, got %q", s)
	}
	return n * mult, nil
}

func fieldIndex(t reflect.Type, name string) (int, bool) {
	for i := range t.NumField() {
		if yamlName(t.Field(i)) == name {
			return i, true
		}
	}
	return 0, false
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}

// suggest returns the known key of t that name most likely misspells, or "".
func suggest(t reflect.Type, name string) string {
	if len(name) > 64 {
		return ""
	}
	norm := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r == '_' || r == '-' || r == ' ' {
				return -1
			}
			return unicode.ToLower(r)
		}, s)
	}
	best, bestDist := "", 3 // more than 2 edits is a different word
	for i := range t.NumField() {
		cand := yamlName(t.Field(i))
		if norm(cand) == norm(name) {
			return cand
		}
		if dist := editdist.Distance(strings.ToLower(name), cand); dist < bestDist && len(name) > 3 {
			best, bestDist = cand, dist
		}
	}
	return best
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a section of keys"
	case yaml.ScalarNode:
		return "a single value"
	}
	return "this"
}

func joinKey(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// shorten keeps a user-typed name from flooding an error line.
func shorten(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return strings.ToValidUTF8(s[:max], "") + "..."
}

// joinProblems locates, sorts, redacts and joins ps into one error (nil if
// none). lines maps key paths to lines; file "" means no file (Validate).
func joinProblems(ps []problem, file string, lines map[string]int, secrets []string) error {
	if len(ps) == 0 {
		return nil
	}
	for i := range ps {
		if ps[i].line == 0 {
			ps[i].line = lineOf(lines, ps[i])
		}
	}
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].line < ps[j].line })
	errs := make([]error, 0, min(len(ps), maxProblems+1))
	for _, p := range ps[:min(len(ps), maxProblems)] {
		errs = append(errs, errors.New(redact(p.text(file), secrets)))
	}
	if more := len(ps) - maxProblems; more > 0 {
		errs = append(errs, errors.New(problem{msg: fmt.Sprintf("and %d more problems; is this the right file?", more)}.text(file)))
	}
	return errors.Join(errs...)
}

// lineOf finds where p is in the file: its key, the key it names as near, or
// the nearest enclosing section that is in the file.
func lineOf(lines map[string]int, p problem) int {
	if l, ok := lines[p.key]; ok {
		return l
	}
	if l, ok := lines[p.near]; ok {
		return l
	}
	for _, k := range []string{p.key, p.near} {
		for k != "" {
			if l, ok := lines[k]; ok {
				return l
			}
			k = k[:max(strings.LastIndexByte(k, '.'), strings.LastIndexByte(k, '['), 0)]
		}
	}
	return 0
}

// redact is the backstop for "secrets never in errors": a secret can reach
// a message by way of a ${VAR} used under another key. Very short values are
// left alone: redacting "on" would garble every message and hide nothing.
func redact(msg string, secrets []string) string {
	for _, s := range secrets {
		if len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return msg
}
