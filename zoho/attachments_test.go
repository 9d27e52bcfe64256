package zoho

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingReader counts what the server has taken off the wire.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// trackingSource is the "file": it notes the most bytes ever read from it but not yet
// received by the server, i.e. what the client held in buffers.
type trackingSource struct {
	rng      *rand.ChaCha8
	left     int64
	read     int64
	received *atomic.Int64
	maxAhead int64
	closed   atomic.Bool
}

func (s *trackingSource) Read(p []byte) (int, error) {
	if s.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > s.left {
		p = p[:s.left]
	}
	n, _ := s.rng.Read(p)
	s.left -= int64(n)
	s.read += int64(n)
	s.maxAhead = max(s.maxAhead, s.read-s.received.Load())
	return n, nil
}

func (s *trackingSource) Close() error { s.closed.Store(true); return nil }

func TestUploadFileStreams(t *testing.T) {
	const (
		size     = 40 << 20
		maxAhead = 16 << 20 // loopback socket buffers and bufio, not the file
	)
	seed := [32]byte{1, 2, 3}
	want := sha256.New()
	io.CopyN(want, rand.NewChaCha8(seed), size)

	f := newFake(t)
	var received atomic.Int64
	type upload struct {
		contentLength, bytes int64
		field, name          string
		sum                  []byte
		err                  error
	}
	got := make(chan upload, 1)
	f.setAPI(func(w http.ResponseWriter, r *http.Request) {
		u := upload{contentLength: r.ContentLength}
		defer func() { got <- u }()
		body := &countingReader{r: r.Body, n: &received}
		_, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		mr := multipart.NewReader(body, params["boundary"])
		p, err := mr.NextPart()
		if err != nil {
			u.err = err
			writeJSON(w, 400, `{"code":"INVALID_DATA","message":"no part","status":"error"}`)
			return
		}
		u.field, u.name = p.FormName(), p.FileName()
		h := sha256.New()
		if _, u.err = io.Copy(h, p); u.err == nil {
			_, u.err = mr.NextPart()
		}
		u.sum = h.Sum(nil)
		io.Copy(io.Discard, body)
		u.bytes = received.Load()
		writeJSON(w, 200, successBody("3477061000000123001"))
	})
	c := mustNew(t, f.options())
	if _, err := c.Token(t.Context()); err != nil {
		t.Fatal(err)
	}
	src := &trackingSource{rng: rand.NewChaCha8(seed), left: size, received: &received}
	opens := 0
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	id, err := c.UploadFile(t.Context(), "Leads", testRecord, "scan 1.pdf", size, func() (io.ReadCloser, error) {
		opens++
		return src, nil
	})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatalf("UploadFile: %v", err)
	}
	if id != "3477061000000123001" {
		t.Errorf("id = %q", id)
	}
	u := <-got
	if u.err != io.EOF {
		t.Errorf("server multipart: %v, want exactly one part", u.err)
	}
	if u.field != "file" || u.name != "scan 1.pdf" {
		t.Errorf("part = field %q file %q, want file, scan 1.pdf", u.field, u.name)
	}
	if !bytes.Equal(u.sum, want.Sum(nil)) {
		t.Error("server's sha256 differs from the file's")
	}
	if u.contentLength != u.bytes {
		t.Errorf("ContentLength = %d, body had %d bytes", u.contentLength, u.bytes)
	}
	if opens != 1 || !src.closed.Load() {
		t.Errorf("opens = %d, closed = %v, want 1, true", opens, src.closed.Load())
	}
	if src.maxAhead > maxAhead {
		t.Errorf("client read %d bytes ahead of the server, want <= %d (it buffers)", src.maxAhead, maxAhead)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 { // measured: ~200 KiB
		t.Errorf("upload allocated %d bytes for a %d-byte file", alloc, size)
	}
}

func TestMultipartOverhead(t *testing.T) {
	for _, name := range []string{"a.pdf", `quo"te\back.txt`, "Übersicht 2024.xlsx", strings.Repeat("x", 300)} {
		t.Run(name[:min(len(name), 10)], func(t *testing.T) {
			var buf bytes.Buffer
			mw := multipart.NewWriter(&buf)
			p, _ := mw.CreateFormFile("file", name)
			p.Write([]byte("12345"))
			mw.Close()
			if got, want := multipartOverhead(mw.Boundary(), name)+5, int64(buf.Len()); got != want {
				t.Errorf("overhead+5 = %d, want %d", got, want)
			}
		})
	}
}

func TestUploadFileSizeChanged(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    string
	}{
		{"shrank", "0123456789", "shrank"},
		{"grew", strings.Repeat("x", 200<<10), "grew"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			var stored atomic.Int32
			f.setAPI(func(w http.ResponseWriter, r *http.Request) {
				if err := r.ParseMultipartForm(1 << 20); err != nil {
					writeJSON(w, 400, `{"code":"INVALID_DATA","message":"bad body","status":"error"}`)
					return
				}
				stored.Add(1)
				writeJSON(w, 200, successBody("1"))
			})
			c := mustNew(t, f.options())
			var mu sync.Mutex
			opens := 0
			_, err := c.UploadFile(t.Context(), "Leads", testRecord, "f.bin", 100<<10, openString(tt.content, &opens, &mu))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "f.bin") {
				t.Fatalf("UploadFile = %v, want an error saying f.bin %s", err, tt.want)
			}
			if stored.Load() != 0 {
				t.Error("server stored an upload whose file changed size")
			}
			if opens != 1 {
				t.Errorf("opens = %d, want 1", opens)
			}
		})
	}
}

func TestUploadFileOpenError(t *testing.T) {
	f := newFake(t)
	c := mustNew(t, f.options())
	_, err := c.UploadFile(t.Context(), "Leads", testRecord, "gone.pdf", 3, func() (io.ReadCloser, error) {
		return nil, errors.New("no such file")
	})
	if err == nil || !strings.Contains(err.Error(), "open gone.pdf: no such file") {
		t.Fatalf("UploadFile = %v, want the open error", err)
	}
}

func TestUploadBadTarget(t *testing.T) {
	f := newFake(t)
	c := mustNew(t, f.options())
	for _, tt := range []struct{ module, record string }{{"Leads", "12a"}, {"../x", "1"}, {"", "1"}, {"Leads", ""}} {
		_, err := c.UploadLink(t.Context(), tt.module, tt.record, "https://example.com", "")
		if class, _ := Classify(err); err == nil || class != Permanent {
			t.Errorf("UploadLink(%q, %q) = %v (%v), want a permanent error", tt.module, tt.record, err, class)
		}
	}
	if f.mintCount() != 0 {
		t.Errorf("a bad target minted a token")
	}
}

func TestUnauthorizedRefreshesOnce(t *testing.T) {
	tests := []struct {
		name      string
		rejected  func(tok string) bool // which tokens the CRM refuses
		code      string
		wantErr   string // "" = success
		wantOpens int
		wantMints int
		wantClass Class
	}{
		{"invalid token then ok", func(tok string) bool { return tok == accessToken(1) }, "INVALID_TOKEN", "", 2, 2, 0},
		{"auth failure then ok", func(tok string) bool { return tok == accessToken(1) }, "AUTHENTICATION_FAILURE", "", 2, 2, 0},
		{"invalid token twice", func(string) bool { return true }, "INVALID_TOKEN", "INVALID_TOKEN", 2, 2, Global},
		{"scope mismatch: no refresh", func(string) bool { return true }, "OAUTH_SCOPE_MISMATCH", "OAUTH_SCOPE_MISMATCH", 1, 1, Global},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.setAPI(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				if tt.rejected(bearer(r)) {
					writeJSON(w, 401, fmt.Sprintf(`{"code":%q,"details":{},"message":"invalid oauth token","status":"error"}`, tt.code))
					return
				}
				writeJSON(w, 200, successBody("42"))
			})
			c := mustNew(t, f.options())
			var mu sync.Mutex
			opens := 0
			id, err := c.UploadFile(t.Context(), "Leads", testRecord, "a.txt", 5, openString("hello", &opens, &mu))
			if tt.wantErr == "" {
				if err != nil || id != "42" {
					t.Fatalf("UploadFile = %q, %v, want 42", id, err)
				}
			} else {
				var ae *APIError
				if !errors.As(err, &ae) || ae.Code != tt.wantErr || ae.Status != 401 {
					t.Fatalf("UploadFile = %v, want APIError %s", err, tt.wantErr)
				}
				if class, _ := Classify(err); class != tt.wantClass {
					t.Errorf("Classify = %v, want %v", class, tt.wantClass)
				}
			}
			if opens != tt.wantOpens || c.Minted() != tt.wantMints {
				t.Errorf("opens = %d, Minted = %d, want %d, %d", opens, c.Minted(), tt.wantOpens, tt.wantMints)
			}
		})
	}
}

// Many requests failing with the same stale token must mint one new token, not one each.
func TestConcurrentUnauthorizedMintOnce(t *testing.T) {
	f := newFake(t)
	f.setAPI(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if bearer(r) == accessToken(1) {
			writeJSON(w, 401, `{"code":"INVALID_TOKEN","details":{},"message":"invalid oauth token","status":"error"}`)
			return
		}
		writeJSON(w, 200, successBody("7"))
	})
	c := mustNew(t, f.options())
	mustToken(t, c, accessToken(1))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := c.UploadLink(t.Context(), "Deals", testRecord, "https://example.com/x", "x")
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("UploadLink: %v", err)
		}
	}
	if f.mintCount() != 2 {
		t.Errorf("server mints = %d, want 2 (the first and one refresh)", f.mintCount())
	}
}

func TestUploadLink(t *testing.T) {
	f := newFake(t)
	var mu sync.Mutex
	var gotURL, gotTitle, gotPath, gotType string
	var gotLen int64
	f.setAPI(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		gotPath, gotLen, gotType = r.URL.Path, r.ContentLength, r.Header.Get("Content-Type")
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			writeJSON(w, 400, `{"code":"INVALID_DATA","message":"bad","status":"error"}`)
			return
		}
		gotURL, gotTitle = r.FormValue("attachmentUrl"), r.FormValue("title")
		if gotURL == "https://exists.example" {
			writeJSON(w, 400, `{"data":[{"code":"INVALID_DATA","details":{},"message":"Attachment link already exists","status":"error"}]}`)
			return
		}
		writeJSON(w, 200, successBody("99"))
	})
	c := mustNew(t, f.options())
	id, err := c.UploadLink(t.Context(), "Price_Books", testRecord, "https://example.com/a?b=c", "website")
	if err != nil || id != "99" {
		t.Fatalf("UploadLink = %q, %v, want 99", id, err)
	}
	mu.Lock()
	if gotURL != "https://example.com/a?b=c" || gotTitle != "website" {
		t.Errorf("fields attachmentUrl=%q title=%q", gotURL, gotTitle)
	}
	if gotPath != "/crm/v2/Price_Books/"+testRecord+"/Attachments" {
		t.Errorf("path = %q", gotPath)
	}
	if gotLen <= 0 || !strings.HasPrefix(gotType, "multipart/form-data; boundary=") {
		t.Errorf("ContentLength = %d, Content-Type = %q", gotLen, gotType)
	}
	mu.Unlock()

	_, err = c.UploadLink(t.Context(), "Leads", testRecord, "https://exists.example", "")
	if !IsLinkExists(err) {
		t.Errorf("IsLinkExists(%v) = false, want true", err)
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "INVALID_DATA" {
		t.Errorf("err = %v, want APIError keeping code INVALID_DATA", err)
	}
	if IsLinkExists(&APIError{Status: 400, Code: "INVALID_DATA", Message: "the id given seems to be invalid"}) || IsLinkExists(errors.New("already exists")) || IsLinkExists(nil) {
		t.Error("IsLinkExists true for an unrelated error")
	}
}

func TestAPIResponses(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		wantID     string
		wantCode   string
		wantClass  Class
		wantHint   time.Duration
		wantInText string
	}{
		{"success 200", 200, nil, successBody("1"), "1", "", 0, 0, ""},
		{"success 201", 201, nil, successBody("2"), "2", "", 0, 0, ""},
		{"success 202 numeric id", 202, nil, `{"data":[{"code":"SUCCESS","details":{"id":3477061000000000001},"status":"success"}]}`, "3477061000000000001", "", 0, 0, ""},
		{"record error", 400, nil, `{"data":[{"code":"INVALID_DATA","details":{"api_name":"id"},"message":"the id given seems to be invalid","status":"error"}]}`, "", "INVALID_DATA", Permanent, 0, "the id given seems to be invalid"},
		{"record error in a 202", 202, nil, `{"data":[{"code":"FILE_SIZE_MORE_THAN_ALLOWED_SIZE","message":"too big","status":"error"}]}`, "", "FILE_SIZE_MORE_THAN_ALLOWED_SIZE", Permanent, 0, "too big"},
		{"top-level error", 400, nil, `{"code":"INVALID_MODULE","details":{},"message":"the module name given seems to be invalid","status":"error"}`, "", "INVALID_MODULE", Permanent, 0, "module name"},
		{"url pattern", 404, nil, `{"code":"INVALID_URL_PATTERN","details":{},"message":"Please check if the URL trying to access is a correct one","status":"error"}`, "", "INVALID_URL_PATTERN", Permanent, 0, "correct one"},
		{"no permission", 403, nil, `{"code":"NO_PERMISSION","details":{},"message":"permission denied","status":"error"}`, "", "NO_PERMISSION", Global, 0, ""},
		{"authorization failed", 403, nil, `{"code":"AUTHORIZATION_FAILED","message":"user does not have sufficient privilege","status":"error"}`, "", "AUTHORIZATION_FAILED", Global, 0, ""},
		{"scope mismatch", 401, nil, `{"code":"OAUTH_SCOPE_MISMATCH","message":"invalid oauth scope","status":"error"}`, "", "OAUTH_SCOPE_MISMATCH", Global, 0, ""},
		{"rate limited seconds", 429, map[string]string{"Retry-After": "7"}, `{"code":"TOO_MANY_REQUESTS","message":"too many requests","status":"error"}`, "", "TOO_MANY_REQUESTS", Transient, 7 * time.Second, ""},
		{"rate limited no body", 429, map[string]string{"Retry-After": "Sat, 01 Mar 2025 12:00:30 GMT"}, ``, "", "TOO_MANY_REQUESTS", Transient, 30 * time.Second, ""},
		{"internal error", 500, nil, `{"code":"INTERNAL_ERROR","message":"Internal Server Error","status":"error"}`, "", "INTERNAL_ERROR", Ambiguous, 0, ""},
		{"bare 503", 503, map[string]string{"Retry-After": "5"}, `<html><body>Service   Unavailable</body></html>`, "", "HTTP_503", Ambiguous, 5 * time.Second, "<html><body>Service Unavailable</body></html>"},
		{"empty 502", 502, nil, ``, "", "HTTP_502", Ambiguous, 0, "Bad Gateway"},
		{"unknown 4xx code", 400, nil, `{"code":"SOMETHING_NEW","message":"new rule","status":"error"}`, "", "SOMETHING_NEW", Permanent, 0, "new rule"},
		{"html 404", 404, nil, `<html>not found</html>`, "", "HTTP_404", Permanent, 0, "not found"},
		{"unreadable 200", 200, nil, `{"data":[]}`, "", "INVALID_RESPONSE", Ambiguous, 0, ""},
		{"redirect", 302, map[string]string{"Location": "https://elsewhere.example/"}, ``, "", "HTTP_302", Global, 0, "elsewhere.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.setAPI(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				writeJSON(w, tt.status, tt.body)
			})
			o := f.options()
			o.Clock = newManualClock()
			c := mustNew(t, o)
			id, err := c.UploadLink(t.Context(), "Leads", testRecord, "https://example.com", "")
			if tt.wantCode == "" {
				if err != nil || id != tt.wantID {
					t.Fatalf("UploadLink = %q, %v, want %q", id, err, tt.wantID)
				}
				return
			}
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("UploadLink = %q, %v, want *APIError", id, err)
			}
			if ae.Code != tt.wantCode || ae.Status != tt.status {
				t.Errorf("APIError = %s (HTTP %d), want %s (HTTP %d)", ae.Code, ae.Status, tt.wantCode, tt.status)
			}
			if class, hint := Classify(err); class != tt.wantClass || hint != tt.wantHint {
				t.Errorf("Classify = %v, %v, want %v, %v", class, hint, tt.wantClass, tt.wantHint)
			}
			if !strings.Contains(err.Error(), tt.wantInText) || !strings.HasPrefix(err.Error(), "zoho: "+tt.wantCode+" (HTTP ") {
				t.Errorf("Error() = %q, want zoho: %s (HTTP n): …%s…", err, tt.wantCode, tt.wantInText)
			}
		})
	}
}

func TestAPIDomain(t *testing.T) {
	other := newFake(t) // a second CRM: where the request lands tells which domain won
	other.setAPI(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 204, "") })
	tests := []struct {
		name          string
		override, def string
		tokenDomain   bool
		want          string // "token" | "other" | "" (error)
	}{
		{"override wins", "other", "", true, "other"},
		{"token's domain", "", "other", true, "token"},
		{"default", "", "other", false, "other"},
		{"none", "", "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			var hits atomic.Int32
			f.setAPI(func(w http.ResponseWriter, r *http.Request) { hits.Add(1); writeJSON(w, 204, "") })
			f.setToken(func(n int) (int, string) {
				if tt.tokenDomain {
					return 200, fmt.Sprintf(`{"access_token":%q,"api_domain":%q,"expires_in":3600}`, accessToken(n), f.srv.URL)
				}
				return 200, fmt.Sprintf(`{"access_token":%q,"expires_in":3600}`, accessToken(n))
			})
			o := f.options()
			if tt.override == "other" {
				o.APIDomain = other.srv.URL + "/"
			}
			if tt.def == "other" {
				o.DefaultAPIDomain = other.srv.URL
			}
			c := mustNew(t, o)
			_, err := c.ListAttachments(t.Context(), "Leads", testRecord)
			switch tt.want {
			case "":
				if class, _ := Classify(err); err == nil || class != Global {
					t.Fatalf("ListAttachments = %v (%v), want a global error", err, class)
				}
			case "token":
				if err != nil || hits.Load() != 1 {
					t.Fatalf("ListAttachments = %v, token domain hits = %d, want 1", err, hits.Load())
				}
			case "other":
				if err != nil || hits.Load() != 0 {
					t.Fatalf("ListAttachments = %v, token domain hits = %d, want 0", err, hits.Load())
				}
			}
		})
	}
}

func TestListAttachments(t *testing.T) {
	f := newFake(t)
	var mu sync.Mutex
	var queries []string
	f.setAPI(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			t.Errorf("method = %s, want GET", r.Method)
		}
		q := r.URL.Query()
		mu.Lock()
		queries = append(queries, q.Get("page"))
		mu.Unlock()
		if q.Get("fields") != "id,File_Name,Size,Created_Time,$link_url" || q.Get("per_page") != "200" {
			t.Errorf("query = %v", q)
		}
		if strings.Contains(r.URL.Path, "/1111/") {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		switch q.Get("page") {
		case "1":
			writeJSON(w, 200, `{"data":[{"id":"3477061000000100001","File_Name":"a.pdf","Size":"41761","Created_Time":"2021-05-05T05:33:33+00:00","$link_url":null,"Owner":{"id":"1"}},
				{"id":"3477061000000100002","File_Name":"website","Size":"0","Created_Time":"2021-05-05T11:03:34+05:30","$link_url":"https://example.com"}],
				"info":{"per_page":2,"count":2,"page":1,"more_records":true}}`)
		case "2":
			writeJSON(w, 200, `{"data":[{"id":"3477061000000100003","File_Name":"b.jpg","Size":12,"Created_Time":"2021-05-06T00:00:00Z"}],"info":{"more_records":false}}`)
		default:
			t.Errorf("unexpected page %q", q.Get("page"))
			w.WriteHeader(http.StatusNoContent)
		}
	})
	c := mustNew(t, f.options())
	got, err := c.ListAttachments(t.Context(), "Leads", testRecord)
	if err != nil {
		t.Fatal(err)
	}
	want := []Attachment{
		{ID: "3477061000000100001", FileName: "a.pdf", Size: 41761, Created: time.Date(2021, 5, 5, 5, 33, 33, 0, time.UTC)},
		{ID: "3477061000000100002", FileName: "website", Size: 0, Created: time.Date(2021, 5, 5, 5, 33, 34, 0, time.UTC), LinkURL: "https://example.com"},
		{ID: "3477061000000100003", FileName: "b.jpg", Size: 12, Created: time.Date(2021, 5, 6, 0, 0, 0, 0, time.UTC)},
	}
	if len(got) != len(want) {
		t.Fatalf("ListAttachments = %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.FileName != w.FileName || g.Size != w.Size || !g.Created.Equal(w.Created) || g.LinkURL != w.LinkURL {
			t.Errorf("attachment %d = %+v, want %+v", i, g, w)
		}
	}
	if strings.Join(queries, ",") != "1,2" {
		t.Errorf("pages fetched = %v, want 1,2", queries)
	}

	empty, err := c.ListAttachments(t.Context(), "Leads", "1111")
	if err != nil || len(empty) != 0 {
		t.Errorf("ListAttachments(no attachments) = %v, %v, want empty, nil", empty, err)
	}
}
