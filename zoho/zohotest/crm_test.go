package zohotest_test

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"crmdrop/zoho/zohotest"
)

var (
	idPattern   = regexp.MustCompile(`^[0-9]{19}$`)
	timePattern = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$`)
)

func TestUploadFile(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := zohotest.NewServer(t, zohotest.Options{Now: clk.Now})
	var mu sync.Mutex
	var hooked []zohotest.Attachment
	s.OnUpload(func(a zohotest.Attachment) {
		mu.Lock()
		defer mu.Unlock()
		hooked = append(hooked, a)
	})
	c := newClient(t)
	tok := mint(t, c, s)
	content := []byte("%PDF-1.7 a contract")

	r := uploadFile(t, c, s, tok, "contract.pdf", content)
	if r.status != http.StatusOK {
		t.Fatalf("upload: HTTP %d %s, want 200", r.status, r.raw)
	}
	data, _ := r.body["data"].([]any)
	if len(data) != 1 {
		t.Fatalf("data = %v, want one item", r.body["data"])
	}
	item := data[0].(map[string]any)
	if item["code"] != "SUCCESS" || item["status"] != "success" || item["message"] != "attachment uploaded successfully" {
		t.Errorf("data[0] = %v, want code SUCCESS, status success", item)
	}
	details := item["details"].(map[string]any)
	id, _ := details["id"].(string)
	if !idPattern.MatchString(id) {
		t.Errorf("details.id = %q, want 19 digits as a string", details["id"])
	}
	if details["Created_Time"] != "2025-03-14T09:26:53+00:00" || details["Modified_Time"] != details["Created_Time"] {
		t.Errorf("Created_Time = %v, Modified_Time = %v, want 2025-03-14T09:26:53+00:00 (seconds, +00:00)", details["Created_Time"], details["Modified_Time"])
	}
	for _, k := range []string{"Created_By", "Modified_By"} {
		u, _ := details[k].(map[string]any)
		if u["name"] == nil || !idPattern.MatchString(fmt.Sprint(u["id"])) {
			t.Errorf("details.%s = %v, want {name, id}", k, details[k])
		}
	}

	sum := sha256.Sum256(content)
	want := zohotest.Attachment{
		ID: id, Module: "Leads", RecordID: record, FileName: "contract.pdf", Size: int64(len(content)),
		SHA256: hex.EncodeToString(sum[:]), Created: time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC),
	}
	if got := s.Uploads(); len(got) != 1 || got[0] != want {
		t.Errorf("Uploads() = %+v, want [%+v]", got, want)
	}
	mu.Lock()
	if len(hooked) != 1 || hooked[0] != want {
		t.Errorf("OnUpload saw %+v, want [%+v]", hooked, want)
	}
	mu.Unlock()
	if got := s.Requests(); got.Uploads != 1 || got.Rejected != 0 || got.Faults != 0 {
		t.Errorf("Requests() = %+v, want 1 upload, nothing rejected", got)
	}
}

func TestUploadAllVersions(t *testing.T) {
	t.Parallel()
	s := zohotest.NewServer(t, zohotest.Options{})
	c := newClient(t)
	tok := mint(t, c, s)
	seen := map[string]bool{}
	for _, v := range []string{"v2", "v2.1", "v3", "v4", "v5", "v6", "v7", "v8"} {
		body, ctype := multipartBody(t, nil, v+".txt", []byte(v))
		r := mustDo(t, c, uploadRequest(t, t.Context(), s, tok, v, "Price_Books", record, body, ctype))
		if r.status != http.StatusOK {
			t.Fatalf("%s: HTTP %d %s, want 200", v, r.status, r.raw)
		}
		id := r.body["data"].([]any)[0].(map[string]any)["details"].(map[string]any)["id"].(string)
		if seen[id] {
			t.Fatalf("%s: attachment id %s reused", v, id)
		}
		seen[id] = true
	}
}

func TestUploadLink(t *testing.T) {
	t.Parallel()
	s := zohotest.NewServer(t, zohotest.Options{})
	c := newClient(t)
	tok := mint(t, c, s)
	link := func(rec, u, title string) response {
		fields := [][2]string{{"attachmentUrl", u}}
		if title != "" {
			fields = append(fields, [2]string{"title", title})
		}
		body, ctype := multipartBody(t, fields, "", nil)
		return mustDo(t, c, uploadRequest(t, t.Context(), s, tok, "v8", "Deals", rec, body, ctype))
	}
	if r := link(record, "https://example.com/a", "website"); r.status != http.StatusOK {
		t.Fatalf("link: HTTP %d %s, want 200", r.status, r.raw)
	}
	if r := link(record, "http://example.com/b", ""); r.status != http.StatusOK {
		t.Fatalf("untitled link: HTTP %d %s, want 200", r.status, r.raw)
	}
	r := link(record, "https://example.com/a", "again")
	wantError(t, r, http.StatusBadRequest, "INVALID_DATA")
	if !strings.Contains(r.message(), "already exists") {
		t.Errorf("duplicate link message = %q, want it to say the link already exists", r.message())
	}
	if r := link("1000000231009", "https://example.com/a", "website"); r.status != http.StatusOK {
		t.Fatalf("same link on another record: HTTP %d %s, want 200", r.status, r.raw)
	}

	got := s.Uploads()
	if len(got) != 3 {
		t.Fatalf("Uploads() = %+v, want 3 links", got)
	}
	if got[0].Link != "https://example.com/a" || got[0].FileName != "website" || got[0].Size != 0 || got[0].SHA256 != "" {
		t.Errorf("titled link stored as %+v", got[0])
	}
	if got[1].FileName != "http://example.com/b" {
		t.Errorf("untitled link FileName = %q, want the URL", got[1].FileName)
	}
}

func TestUploadRefused(t *testing.T) {
	t.Parallel()
	file := func(name string, size int) func(t *testing.T) (io.Reader, string) {
		return func(t *testing.T) (io.Reader, string) {
			return multipartBody(t, nil, name, bytes.Repeat([]byte("x"), size))
		}
	}
	link := func(u string) func(t *testing.T) (io.Reader, string) {
		return func(t *testing.T) (io.Reader, string) {
			return multipartBody(t, [][2]string{{"attachmentUrl", u}}, "", nil)
		}
	}
	tests := []struct {
		name       string
		setup      func(s *zohotest.Server)
		version    string
		module     string
		record     string
		body       func(t *testing.T) (io.Reader, string)
		wantStatus int
		wantCode   string
		wantMsg    string
	}{
		{name: "module in wrong case", module: "leads", wantStatus: 400, wantCode: "INVALID_MODULE", wantMsg: "the module name given seems to be invalid"},
		{name: "unregistered custom module", module: "Projects_X", wantStatus: 400, wantCode: "INVALID_MODULE"},
		{name: "record id not digits", record: "12ab", wantStatus: 400, wantCode: "INVALID_DATA", wantMsg: "the related id given seems to be invalid"},
		{name: "invalid record", setup: func(s *zohotest.Server) { s.InvalidRecord("Leads", record) }, wantStatus: 400, wantCode: "INVALID_DATA", wantMsg: "the related id given seems to be invalid"},
		{name: "exe file", body: file("setup.EXE", 10), wantStatus: 400, wantCode: "INVALID_DATA", wantMsg: "invalid file type"},
		{name: "file too big", body: file("big.bin", 2048), wantStatus: 400, wantCode: "FILE_SIZE_MORE_THAN_ALLOWED_SIZE"},
		{name: "content length too big", body: file("huge.bin", 1536<<10), wantStatus: 400, wantCode: "FILE_SIZE_MORE_THAN_ALLOWED_SIZE"},
		{name: "ftp link", body: link("ftp://example.com/x"), wantStatus: 400, wantCode: "INVALID_URL_PATTERN"},
		{name: "link not a URL", body: link("not a url"), wantStatus: 400, wantCode: "INVALID_URL_PATTERN"},
		{name: "no file", body: func(t *testing.T) (io.Reader, string) {
			return multipartBody(t, [][2]string{{"title", "x"}}, "", nil)
		}, wantStatus: 400, wantCode: "REQUIRED_PARAM_MISSING"},
		{name: "file and link", body: func(t *testing.T) (io.Reader, string) {
			return multipartBody(t, [][2]string{{"attachmentUrl", "https://example.com"}}, "a.txt", []byte("a"))
		}, wantStatus: 400, wantCode: "INVALID_DATA"},
		{name: "not multipart", body: func(*testing.T) (io.Reader, string) {
			return strings.NewReader(`{"file":"x"}`), "application/json"
		}, wantStatus: 400, wantCode: "INVALID_REQUEST"},
		{name: "scope mismatch", setup: func(s *zohotest.Server) { s.SetScopeMismatch(true) }, wantStatus: 401, wantCode: "OAUTH_SCOPE_MISMATCH"},
		{name: "unknown API version", version: "v1", wantStatus: 404, wantCode: "INVALID_URL_PATTERN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := zohotest.NewServer(t, zohotest.Options{MaxFileSize: 1024})
			if tt.setup != nil {
				tt.setup(s)
			}
			c := newClient(t)
			tok := mint(t, c, s)
			version, module, rec := cmp.Or(tt.version, "v2"), cmp.Or(tt.module, "Leads"), cmp.Or(tt.record, record)
			body, ctype := file("ok.pdf", 100)(t)
			if tt.body != nil {
				body, ctype = tt.body(t)
			}
			r := mustDo(t, c, uploadRequest(t, t.Context(), s, tok, version, module, rec, body, ctype))
			wantError(t, r, tt.wantStatus, tt.wantCode)
			if tt.wantMsg != "" && r.message() != tt.wantMsg {
				t.Errorf("message = %q, want %q", r.message(), tt.wantMsg)
			}
			if got := s.Uploads(); len(got) != 0 {
				t.Errorf("Uploads() = %+v after a refusal, want none", got)
			}
			if got := s.Requests().Rejected; got != 1 {
				t.Errorf("Requests().Rejected = %d, want 1", got)
			}
		})
	}
}

func TestCustomModule(t *testing.T) {
	t.Parallel()
	s := zohotest.NewServer(t, zohotest.Options{})
	s.AddModule("Projects_X")
	c := newClient(t)
	tok := mint(t, c, s)
	body, ctype := multipartBody(t, nil, "plan.txt", []byte("plan"))
	r := mustDo(t, c, uploadRequest(t, t.Context(), s, tok, "v2", "Projects_X", record, body, ctype))
	if r.status != http.StatusOK {
		t.Fatalf("upload to a registered custom module: HTTP %d %s, want 200", r.status, r.raw)
	}
	body, ctype = multipartBody(t, nil, "plan.txt", []byte("plan"))
	wantError(t, mustDo(t, c, uploadRequest(t, t.Context(), s, tok, "v2", "projects_x", record, body, ctype)), 400, "INVALID_MODULE")
}

func TestWrongMethodAndPath(t *testing.T) {
	t.Parallel()
	s := zohotest.NewServer(t, zohotest.Options{})
	c := newClient(t)
	tok := mint(t, c, s)
	for _, tt := range []struct {
		method, path string
		status       int
		code         string
	}{
		{http.MethodPut, "/crm/v2/Leads/" + record + "/Attachments", 405, "INVALID_REQUEST_METHOD"},
		{http.MethodGet, "/crm/v2/Leads/" + record + "/Notes", 404, "INVALID_URL_PATTERN"},
		{http.MethodGet, "/crm/v2/Leads/" + record, 404, "INVALID_URL_PATTERN"}, // GET /crm/v2/Leads lists records (ping.go)
		{http.MethodGet, "/elsewhere", 404, "INVALID_URL_PATTERN"},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), tt.method, s.URL()+tt.path, nil)
		req.Header.Set("Authorization", "Zoho-oauthtoken "+tok)
		r := mustDo(t, c, req)
		if r.status != tt.status || r.code() != tt.code {
			t.Errorf("%s %s: HTTP %d %q, want %d %q", tt.method, tt.path, r.status, r.code(), tt.status, tt.code)
		}
	}
}

// pattern is an endless, cheap, non-constant byte stream.
type pattern struct{ n byte }

func (p *pattern) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = p.n
		p.n = p.n*31 + 7
	}
	return len(b), nil
}

// TestUploadStreamsLargeBody sends 50 MiB and checks that neither side held
// it: everything allocated during the upload, client included, stays far
// below the body's size. Not parallel, so that other tests' allocations do
// not count.
func TestUploadStreamsLargeBody(t *testing.T) {
	s := zohotest.NewServer(t, zohotest.Options{Logf: func(string, ...any) {}})
	c := newClient(t)
	tok := mint(t, c, s)
	const size = 50 << 20

	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	sums := make(chan string, 1)
	go func() {
		h := sha256.New()
		part, err := mw.CreateFormFile("file", "scan.tiff")
		if err == nil {
			_, err = io.Copy(part, io.TeeReader(io.LimitReader(&pattern{}, size), h))
		}
		if err == nil {
			err = mw.Close()
		}
		sums <- hex.EncodeToString(h.Sum(nil))
		pw.CloseWithError(err)
	}()
	req := uploadRequest(t, t.Context(), s, tok, "v2", "Leads", record, pr, mw.FormDataContentType())

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r := mustDo(t, c, req)
	runtime.ReadMemStats(&after)
	if r.status != http.StatusOK {
		t.Fatalf("50 MiB upload: HTTP %d %s, want 200", r.status, r.raw)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/8 {
		t.Errorf("a %d MiB upload allocated %d MiB: the body is being buffered", size>>20, alloc>>20)
	}
	got := s.Uploads()
	if want := <-sums; len(got) != 1 || got[0].Size != size || got[0].SHA256 != want {
		t.Errorf("Uploads() = %+v, want one of %d bytes with sha256 %s", got, size, want)
	}
}

func TestListAttachments(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := zohotest.NewServer(t, zohotest.Options{Now: clk.Now})
	c := newClient(t)
	tok := mint(t, c, s)

	r := mustDo(t, c, listRequest(t, s, tok, "v2", "Leads", record, "page=1&per_page=200"))
	if r.status != http.StatusNoContent || len(r.raw) != 0 {
		t.Fatalf("list of a record without attachments: HTTP %d %q, want 204 and no body", r.status, r.raw)
	}

	for i := range 5 {
		uploadFile(t, c, s, tok, fmt.Sprintf("p%d.jpg", i), bytes.Repeat([]byte("j"), 1000+i))
		clk.Advance(time.Second)
	}
	body, ctype := multipartBody(t, [][2]string{{"attachmentUrl", "https://example.com/site"}, {"title", "website"}}, "", nil)
	if r := mustDo(t, c, uploadRequest(t, t.Context(), s, tok, "v2", "Leads", record, body, ctype)); r.status != 200 {
		t.Fatalf("link upload: HTTP %d %s", r.status, r.raw)
	}
	body, ctype = multipartBody(t, nil, "other.pdf", []byte("other"))
	if r := mustDo(t, c, uploadRequest(t, t.Context(), s, tok, "v2", "Leads", "1000000231009", body, ctype)); r.status != 200 {
		t.Fatalf("upload to another record: HTTP %d %s", r.status, r.raw)
	}

	var items []map[string]any
	for page := 1; ; page++ {
		r := mustDo(t, c, listRequest(t, s, tok, "v2", "Leads", record, fmt.Sprintf("page=%d&per_page=4", page)))
		if page == 3 {
			if r.status != http.StatusNoContent {
				t.Fatalf("page past the end: HTTP %d, want 204", r.status)
			}
			break
		}
		if r.status != http.StatusOK {
			t.Fatalf("page %d: HTTP %d %s", page, r.status, r.raw)
		}
		data := r.body["data"].([]any)
		info := r.body["info"].(map[string]any)
		wantCount := []int{4, 2}[page-1]
		if len(data) != wantCount || info["count"] != float64(wantCount) || info["page"] != float64(page) ||
			info["per_page"] != 4.0 || info["more_records"] != (page == 1) {
			t.Fatalf("page %d: %d items, info %v; want %d items, more_records %v", page, len(data), info, wantCount, page == 1)
		}
		for _, d := range data {
			items = append(items, d.(map[string]any))
		}
	}
	uploads := s.Uploads()
	for i, item := range items {
		a := uploads[i]
		if item["id"] != a.ID || item["File_Name"] != a.FileName || item["Size"] != fmt.Sprint(a.Size) ||
			item["Created_Time"] != a.Created.Format("2006-01-02T15:04:05-07:00") {
			t.Errorf("item %d = %v, want %+v with Size as a string", i, item, a)
		}
		if !timePattern.MatchString(item["Created_Time"].(string)) {
			t.Errorf("item %d Created_Time = %v, want RFC 3339 with seconds and offset", i, item["Created_Time"])
		}
	}
	if items[4]["Created_Time"] != "2025-03-14T09:26:57+00:00" {
		t.Errorf("5th Created_Time = %v, want the clock's time", items[4]["Created_Time"])
	}
	if items[5]["$link_url"] != "https://example.com/site" || items[5]["File_Name"] != "website" || items[5]["Size"] != "0" {
		t.Errorf("link item = %v, want $link_url, title as File_Name, Size \"0\"", items[5])
	}
	if _, ok := items[0]["$link_url"]; ok {
		t.Errorf("file item has a $link_url: %v", items[0])
	}
}

func TestListParameters(t *testing.T) {
	t.Parallel()
	s := zohotest.NewServer(t, zohotest.Options{})
	c := newClient(t)
	tok := mint(t, c, s)
	uploadFile(t, c, s, tok, "a.pdf", []byte("a"))

	r := mustDo(t, c, listRequest(t, s, tok, "v3", "Leads", record, "page=1"))
	wantError(t, r, http.StatusBadRequest, "REQUIRED_PARAM_MISSING")
	if d := r.body["details"].(map[string]any); d["param"] != "fields" {
		t.Errorf("details = %v, want param fields", d)
	}

	r = mustDo(t, c, listRequest(t, s, tok, "v8", "Leads", record, "fields=File_Name,Size&per_page=500"))
	if r.status != http.StatusOK {
		t.Fatalf("v8 list with fields: HTTP %d %s", r.status, r.raw)
	}
	item := r.body["data"].([]any)[0].(map[string]any)
	var keys []string
	for k := range item {
		if !strings.HasPrefix(k, "$") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"File_Name", "Size", "id"}) {
		t.Errorf("fields=File_Name,Size gave fields %v, want File_Name, Size, id (plus $ meta fields)", keys)
	}
	if info := r.body["info"].(map[string]any); info["per_page"] != 200.0 {
		t.Errorf("per_page=500 answered info.per_page %v, want 200 (the maximum)", info["per_page"])
	}

	for _, q := range []string{"page=0", "per_page=-1", "page=x"} {
		wantError(t, mustDo(t, c, listRequest(t, s, tok, "v2", "Leads", record, q)), http.StatusBadRequest, "INVALID_DATA")
	}
	if got := s.Requests(); got.Lists != 5 || got.Rejected != 4 {
		t.Errorf("Requests() = %+v, want 5 lists, 4 rejected", got)
	}
}

func TestDeleteAttachment(t *testing.T) {
	t.Parallel()
	s := zohotest.NewServer(t, zohotest.Options{})
	c := newClient(t)
	tok := mint(t, c, s)
	uploadFile(t, c, s, tok, "a.pdf", []byte("a"))
	uploadFile(t, c, s, tok, "b.pdf", []byte("b"))
	first := s.Uploads()[0]

	del := func(rec, id string) response {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodDelete, attachmentsURL(s, "v2", "Leads", rec)+"/"+id, nil)
		req.Header.Set("Authorization", "Zoho-oauthtoken "+tok)
		return mustDo(t, c, req)
	}
	wantError(t, del("1000000231009", first.ID), http.StatusBadRequest, "INVALID_DATA")
	r := del(record, first.ID)
	if item := r.body["data"].([]any)[0].(map[string]any); r.status != 200 || item["code"] != "SUCCESS" {
		t.Fatalf("delete: HTTP %d %s, want 200 SUCCESS", r.status, r.raw)
	}
	if got := s.Uploads(); len(got) != 1 || got[0].FileName != "b.pdf" {
		t.Errorf("Uploads() after delete = %+v, want only b.pdf", got)
	}
	wantError(t, del(record, first.ID), http.StatusBadRequest, "INVALID_DATA")
	if got := s.Requests().Deletes; got != 3 {
		t.Errorf("Requests().Deletes = %d, want 3", got)
	}
}

func TestScopeMismatchSwitch(t *testing.T) {
	t.Parallel()
	s := zohotest.NewServer(t, zohotest.Options{})
	c := newClient(t)
	tok := mint(t, c, s)
	s.SetScopeMismatch(true)
	r := uploadFile(t, c, s, tok, "a.pdf", []byte("a"))
	wantError(t, r, http.StatusUnauthorized, "OAUTH_SCOPE_MISMATCH")
	wantError(t, mustDo(t, c, listRequest(t, s, tok, "v2", "Leads", record, "")), http.StatusUnauthorized, "OAUTH_SCOPE_MISMATCH")
	s.SetScopeMismatch(false)
	if r := uploadFile(t, c, s, tok, "a.pdf", []byte("a")); r.status != http.StatusOK {
		t.Fatalf("upload after the switch is off: HTTP %d %s, want 200", r.status, r.raw)
	}
}

func TestNewBadAddr(t *testing.T) {
	t.Parallel()
	s, err := zohotest.New(zohotest.Options{Addr: "127.0.0.1:-1"})
	if err == nil {
		s.Close()
		t.Fatal("New with a bad address succeeded")
	}
}
