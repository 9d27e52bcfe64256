package inbox

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"strings"
)

// maxURLFileSize bounds a .url file. Real Internet Shortcuts are a few hundred
// bytes; anything bigger is another file that happens to end in .url, and we
// must not read it whole into memory.
const maxURLFileSize = 64 << 10

// IsURLFile reports whether name (a file name or slash-separated path) is an
// Internet Shortcut by its extension, in any case.
func IsURLFile(name string) bool {
	return strings.EqualFold(path.Ext(name), ".url")
}

// LinkTitle is the title a shortcut's link is attached under: the base name
// without its ".url" extension ("Leads/1/website.url" gives "website").
func LinkTitle(fileName string) string {
	base := path.Base(fileName)
	if IsURLFile(base) && len(base) > len(".url") {
		return base[:len(base)-len(".url")]
	}
	return base
}

// ParseURLFile reads a Windows Internet Shortcut, an INI file whose
// [InternetShortcut] section (any case) has a URL= key, and returns the URL
// as written (browsers write it escaped already; only spaces, which a
// hand-edited file may hold, become %20). It reads at most 64 KiB from r.
// A UTF-8 byte order mark, CRLF line ends, blank lines, ";" comments, other
// sections and keys, and spaces around "=" are accepted; the first URL= in
// the section wins, as Windows reads it. It is safe for concurrent use.
//
// The error, one line staff can act on, says that there is no URL, that the
// URL is not an absolute http or https link (javascript:, file: and the like
// are refused), or that the file is too big to be a shortcut.
func ParseURLFile(r io.Reader) (string, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxURLFileSize+1))
	if err != nil {
		return "", fmt.Errorf("read shortcut: %w", err)
	}
	if len(data) > maxURLFileSize {
		return "", errors.New("the file is bigger than 64 KiB, so it is not an Internet Shortcut; save the link again from the browser, or give the file another extension to upload it as a file")
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))

	raw, found := "", false
	inSection := false
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == ';' || line[0] == '#':
			continue
		case line[0] == '[':
			name, ok := strings.CutSuffix(line[1:], "]")
			inSection = ok && strings.EqualFold(strings.TrimSpace(name), "InternetShortcut")
			continue
		}
		if !inSection {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(key), "URL") {
			continue
		}
		raw, found = strings.TrimSpace(value), true
		break
	}
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		raw = strings.TrimSpace(raw[1 : len(raw)-1])
	}
	if !found || raw == "" {
		return "", errors.New("the shortcut has no link in it (no URL= line under [InternetShortcut]); save the link again from the browser")
	}
	return checkLink(raw)
}

// checkLink accepts only absolute http and https links: those are what a
// record's attachment link can open, and anything else (javascript:, file:,
// a bare host name) is refused here rather than by the API.
func checkLink(raw string) (string, error) {
	const fix = "only web links starting with http:// or https:// can be attached"
	// The link is returned as written, not as u.String(): that would
	// percent-encode an international host name ("bücher.example"), which
	// browsers do not read back as the same site.
	raw = strings.ReplaceAll(raw, " ", "%20")
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("the shortcut's link is not a valid web address; %s", fix)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		if u.Scheme == "" {
			return "", fmt.Errorf("the shortcut's link has no http:// or https:// in front; %s", fix)
		}
		// The scheme alone, never the whole link: it may be long, or carry a password.
		return "", fmt.Errorf("the shortcut's link is a %s link; %s", quote(u.Scheme+":"), fix)
	}
	if u.Host == "" || u.Hostname() == "" {
		return "", fmt.Errorf("the shortcut's link names no web site; %s", fix)
	}
	return raw, nil
}
