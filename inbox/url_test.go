package inbox

import (
	"errors"
	"io"
	"net/url"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseURLFile(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"windows", "[InternetShortcut]\r\nURL=https://www.example.com/\r\n", "https://www.example.com/"},
		{"lf only", "[InternetShortcut]\nURL=https://example.com/a?b=c#d\n", "https://example.com/a?b=c#d"},
		{"no final newline", "[InternetShortcut]\nURL=http://example.com", "http://example.com"},
		{"bom", "\xef\xbb\xbf[InternetShortcut]\r\nURL=https://example.com/\r\n", "https://example.com/"},
		{"section any case", "[internetshortcut]\nurl=https://example.com/\n", "https://example.com/"},
		{"spaces around", "  [ InternetShortcut ]  \n  URL  =  https://example.com/x  \n", "https://example.com/x"},
		{"tabs", "[InternetShortcut]\n\tURL\t=\thttps://example.com/\t\n", "https://example.com/"},
		{"blank lines and comments", "\r\n; made by hand\r\n\r\n[InternetShortcut]\r\n\r\nURL=https://example.com/\r\n\r\n", "https://example.com/"},
		{"chrome style", "[{000214A0-0000-0000-C000-000000000046}]\r\nProp3=19,11\r\n[InternetShortcut]\r\nIDList=\r\nURL=https://crm.zoho.com/crm/tab/Leads/1\r\nIconIndex=0\r\nHotKey=0\r\n", "https://crm.zoho.com/crm/tab/Leads/1"},
		{"url in another section first", "[Other]\nURL=https://wrong.example/\n[InternetShortcut]\nURL=https://right.example/\n", "https://right.example/"},
		{"other section after", "[InternetShortcut]\nURL=https://right.example/\n[InternetShortcut.W]\nURL=https://wrong.example/\n", "https://right.example/"},
		{"first URL wins", "[InternetShortcut]\nURL=https://first.example/\nURL=https://second.example/\n", "https://first.example/"},
		{"value with equals", "[InternetShortcut]\nURL=https://example.com/?a=b&c=d\n", "https://example.com/?a=b&c=d"},
		{"quoted", "[InternetShortcut]\nURL=\"https://example.com/\"\n", "https://example.com/"},
		{"upper-case scheme", "[InternetShortcut]\nURL=HTTPS://Example.com/Path\n", "HTTPS://Example.com/Path"},
		{"space in path is escaped", "[InternetShortcut]\nURL=https://example.com/a b\n", "https://example.com/a%20b"},
		{"port and user", "[InternetShortcut]\nURL=https://u@example.com:8443/x\n", "https://u@example.com:8443/x"},
		{"space in query", "[InternetShortcut]\nURL=https://example.com/s?q=a b#c d\n", "https://example.com/s?q=a%20b#c%20d"},
		{"already escaped", "[InternetShortcut]\nURL=https://example.com/a%20b?x=%2F\n", "https://example.com/a%20b?x=%2F"},
		{"ipv6", "[InternetShortcut]\nURL=http://[::1]:8080/\n", "http://[::1]:8080/"},
		{"unicode host", "[InternetShortcut]\nURL=https://bücher.example/\n", "https://bücher.example/"},
		{"exactly 64 KiB", "[InternetShortcut]\nURL=https://example.com/\n" + strings.Repeat(";", maxURLFileSize-len("[InternetShortcut]\nURL=https://example.com/\n")), "https://example.com/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseURLFile(strings.NewReader(tt.in))
			if err != nil || got != tt.want {
				t.Fatalf("ParseURLFile(%q) = %q, %v, want %q, nil", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseURLFileErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // substring of the error
	}{
		{"empty", "", "no link"},
		{"no section", "URL=https://example.com/\n", "no link"},
		{"other section only", "[Other]\nURL=https://example.com/\n", "no link"},
		{"section without url", "[InternetShortcut]\nIconIndex=0\n", "no link"},
		{"empty url", "[InternetShortcut]\nURL=\n", "no link"},
		{"empty quoted url", "[InternetShortcut]\nURL=\"\"\n", "no link"},
		{"unclosed section header", "[InternetShortcut\nURL=https://example.com/\n", "no link"},
		{"not ini", "%PDF-1.7\n\x00\x01binary", "no link"},
		{"javascript", "[InternetShortcut]\nURL=javascript:alert(1)\n", `"javascript:" link`},
		{"file", "[InternetShortcut]\nURL=file:///C:/secret.txt\n", `"file:" link`},
		{"unc as file", "[InternetShortcut]\nURL=file://server/share/a.pdf\n", `"file:" link`},
		{"ftp", "[InternetShortcut]\nURL=ftp://example.com/a\n", `"ftp:" link`},
		{"mailto", "[InternetShortcut]\nURL=mailto:a@example.com\n", `"mailto:" link`},
		{"data", "[InternetShortcut]\nURL=data:text/html,hi\n", `"data:" link`},
		{"relative", "[InternetShortcut]\nURL=/crm/tab/Leads\n", "no http:// or https://"},
		{"bare host", "[InternetShortcut]\nURL=www.example.com\n", "no http:// or https://"},
		{"opaque http", "[InternetShortcut]\nURL=http:example.com\n", "names no web site"},
		{"no host", "[InternetShortcut]\nURL=https:///path\n", "names no web site"},
		{"port only", "[InternetShortcut]\nURL=http://:80/\n", "names no web site"},
		{"bad escape", "[InternetShortcut]\nURL=https://example.com/%zz\n", "not a valid web address"},
		{"space in host", "[InternetShortcut]\nURL=https://exa mple.com/\n", "not a valid web address"},
		{"control character", "[InternetShortcut]\nURL=https://exa\x7fmple.com/\n", "not a valid web address"},
		{"too big", "[InternetShortcut]\nURL=https://example.com/\n" + strings.Repeat(";", maxURLFileSize), "bigger than 64 KiB, so it is not an Internet Shortcut"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseURLFile(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("ParseURLFile(%q) = %q, nil, want error containing %q", tt.in, got, tt.want)
			}
			if got != "" {
				t.Errorf("ParseURLFile(%q) = %q with an error, want \"\"", tt.in, got)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("ParseURLFile(%q) error = %q, want it to contain %q", tt.in, msg, tt.want)
			}
			if strings.ContainsAny(msg, "\r\n") {
				t.Errorf("ParseURLFile(%q) error spans lines: %q", tt.in, msg)
			}
		})
	}
}

// TestParseURLFileReadsAtMost64KiB pins that a huge file is not read whole.
func TestParseURLFileReadsAtMost64KiB(t *testing.T) {
	r := &countingReader{r: io.MultiReader(strings.NewReader("[InternetShortcut]\nURL=https://example.com/\n"), zeros{})}
	if _, err := ParseURLFile(r); err == nil {
		t.Fatal("ParseURLFile(endless) = nil error, want too big")
	}
	if r.n > maxURLFileSize+1 {
		t.Errorf("ParseURLFile read %d bytes, want at most %d", r.n, maxURLFileSize+1)
	}
}

func TestParseURLFileReadError(t *testing.T) {
	boom := errors.New("boom")
	_, err := ParseURLFile(iotest.ErrReader(boom))
	if !errors.Is(err, boom) {
		t.Errorf("ParseURLFile(failing reader) = %v, want it to wrap %v", err, boom)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestLinkTitle(t *testing.T) {
	tests := []struct{ in, want string }{
		{"website.url", "website"},
		{"Website.URL", "Website"},
		{"Leads/1/Acme home page.url", "Acme home page"},
		{"a.b.url", "a.b"},
		{"notes.txt", "notes.txt"},
		{"url", "url"},
		{".url", ".url"},
		{"Zoho CRM – Lead.url", "Zoho CRM – Lead"},
	}
	for _, tt := range tests {
		if got := LinkTitle(tt.in); got != tt.want {
			t.Errorf("LinkTitle(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestIsURLFile(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"website.url", true}, {"Leads/1/W.URL", true}, {"a.url.pdf", false}, {"url", false}, {"a.urls", false},
	}
	for _, tt := range tests {
		if got := IsURLFile(tt.in); got != tt.want {
			t.Errorf("IsURLFile(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func FuzzParseURLFile(f *testing.F) {
	for _, s := range []string{
		"[InternetShortcut]\r\nURL=https://www.example.com/\r\n",
		"\xef\xbb\xbf[internetshortcut]\n url = http://example.com/a b \n",
		"[InternetShortcut]\nURL=javascript:alert(1)\n",
		"[InternetShortcut]\nURL=http:example.com\n",
		"[InternetShortcut]\nURL=http://[::1]:80/\n",
		"[InternetShortcut]\nURL=\"https://example.com/\"\n",
		"[Other]\nURL=https://example.com/\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseURLFile(strings.NewReader(string(data)))
		if err != nil {
			if got != "" {
				t.Fatalf("ParseURLFile(%q) = %q with error %v", data, got, err)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("ParseURLFile(%q) error spans lines: %q", data, err)
			}
			return
		}
		u, perr := url.Parse(got)
		if perr != nil {
			t.Fatalf("ParseURLFile(%q) = %q, which does not parse: %v", data, got, perr)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			t.Fatalf("ParseURLFile(%q) = %q, scheme %q", data, got, u.Scheme)
		}
		if u.Hostname() == "" {
			t.Fatalf("ParseURLFile(%q) = %q, no host", data, got)
		}
	})
}
