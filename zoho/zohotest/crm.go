package zohotest

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
)

const (
	// multipartSlack is what a one-file multipart body may carry beyond the
	// file itself (boundaries, headers, a title) before Content-Length alone
	// proves the file too big.
	multipartSlack = 1 << 20
	// resetAfterBytes is how much of the body FaultReset reads before the
	// reset, so that the client is surely mid-body for large files.
	resetAfterBytes = 32 << 10
	// maxFieldSize bounds the non-file form fields (attachmentUrl, title).
	maxFieldSize = 64 << 10
	// timeLayout is Zoho's Created_Time: seconds precision, "+00:00" offset.
	timeLayout = "2006-01-02T15:04:05-07:00"
	userID     = "3477061000000174001"
	userName   = "Test"
)

type apiError struct {
	status     int
	code       string
	message    string
	details    map[string]any
	retryAfter string // Retry-After header, if any
}

func newError(status int, code, message string) *apiError {
	return &apiError{status: status, code: code, message: message}
}

func errURLPattern() *apiError {
	return newError(http.StatusNotFound, "INVALID_URL_PATTERN", "Please check if the URL trailing is correct")
}

func errInvalidRecord() *apiError {
	return newError(http.StatusBadRequest, "INVALID_DATA", "the related id given seems to be invalid")
}

func errInternal() *apiError {
	return newError(http.StatusInternalServerError, "INTERNAL_ERROR", "Internal Server Error")
}

func errTooMany(retryAfter time.Duration) *apiError {
	e := newError(http.StatusTooManyRequests, "TOO_MANY_REQUESTS", "too many requests, please try again after some time")
	// Whole seconds, rounded up, at least 1: a client that reads "0"
	// would retry at once.
	secs := int64((retryAfter + time.Second - 1) / time.Second)
	e.retryAfter = strconv.FormatInt(max(secs, 1), 10)
	return e
}

func errFileSize() *apiError {
	return newError(http.StatusBadRequest, "FILE_SIZE_MORE_THAN_ALLOWED_SIZE", "file size is more than allowed size")
}

func errMissing(param string) *apiError {
	e := newError(http.StatusBadRequest, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing")
	e.details = map[string]any{"param": param}
	return e
}

func writeError(w http.ResponseWriter, e *apiError) {
	if e.retryAfter != "" {
		w.Header().Set("Retry-After", e.retryAfter)
	}
	details := e.details
	if details == nil {
		details = map[string]any{}
	}
	writeJSON(w, e.status, struct {
		Code    string         `json:"code"`
		Details map[string]any `json:"details"`
		Message string         `json:"message"`
		Status  string         `json:"status"`
	}{e.code, details, e.message, "error"})
}

// crm routes /crm/{version}/{Module}/{record_id}/Attachments[/{id}] and
// GET /crm/{version}/{Module} (records, in ping.go).
func (s *Server) crm(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/crm/"), "/")
	if len(parts) == 2 && r.Method == http.MethodGet {
		if major, ok := apiVersion(parts[0]); ok {
			s.records(w, r, major, parts[1]) // ping.go
			return
		}
	}
	if len(parts) < 4 || len(parts) > 5 || parts[3] != "Attachments" {
		s.reject()
		writeError(w, errURLPattern())
		return
	}
	major, ok := apiVersion(parts[0])
	if !ok {
		s.reject()
		writeError(w, errURLPattern())
		return
	}
	module, record := parts[1], parts[2]
	switch {
	case len(parts) == 4 && r.Method == http.MethodPost:
		s.upload(w, r, module, record)
	case len(parts) == 4 && r.Method == http.MethodGet:
		s.list(w, r, major, module, record)
	case len(parts) == 5 && r.Method == http.MethodDelete:
		s.delete(w, r, module, record, parts[4])
	default:
		s.reject()
		writeError(w, newError(http.StatusMethodNotAllowed, "INVALID_REQUEST_METHOD", "The http request method type is not a valid one"))
	}
}

// apiVersion accepts v2, v2.1 and v3 to v8, and returns the major version.
func apiVersion(v string) (int, bool) {
	switch v {
	case "v2", "v2.1":
		return 2, true
	case "v3", "v4", "v5", "v6", "v7", "v8":
		return int(v[1] - '0'), true
	}
	return 0, false
}

// check applies what Zoho checks before looking at the body: the token, the
// scope, the module and the record.
func (s *Server) check(r *http.Request, module, record string) *apiError {
	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Zoho-oauthtoken ")
	t := s.tokens[tok]
	if !ok || t == nil {
		return newError(http.StatusUnauthorized, "AUTHENTICATION_FAILURE", "Authentication failed")
	}
	if t.revoked || !now.Before(t.expires) {
		return newError(http.StatusUnauthorized, "INVALID_TOKEN", "invalid oauth token")
	}
	if s.scopeMismatch {
		return newError(http.StatusUnauthorized, "OAUTH_SCOPE_MISMATCH", "invalid oauth scope to access this URL")
	}
	if !s.modules[module] {
		return newError(http.StatusBadRequest, "INVALID_MODULE", "the module name given seems to be invalid")
	}
	if !digits(record) || s.invalid[module+"/"+record] {
		return errInvalidRecord()
	}
	return nil
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// refuse answers a request refused for what it carried.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, e *apiError) {
	s.reject()
	s.drain(r)
	writeError(w, e)
}

// drain reads what is left of a bounded body before an early answer, so that
// the client sees the answer rather than a write error. A body whose
// Content-Length is already too big is left unread: the server then closes
// the connection after answering.
func (s *Server) drain(r *http.Request) {
	limit := s.opts.MaxFileSize + multipartSlack
	if r.ContentLength > limit {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, limit))
}

func (s *Server) upload(w http.ResponseWriter, r *http.Request, module, record string) {
	s.mu.Lock()
	s.counts.Uploads++
	s.mu.Unlock()
	if e := s.check(r, module, record); e != nil {
		s.refuse(w, r, e)
		return
	}
	if r.ContentLength > s.opts.MaxFileSize+multipartSlack {
		// Refuse early: no need to receive what cannot be kept.
		s.refuse(w, r, errFileSize())
		return
	}

	s.mu.Lock()
	if s.opts.MaxConcurrent > 0 && s.inFlight >= s.opts.MaxConcurrent {
		ra := s.retryAfter
		s.mu.Unlock()
		s.logf("upload to %s/%s refused: %d uploads in progress", module, record, s.opts.MaxConcurrent)
		s.refuse(w, r, errTooMany(ra))
		return
	}
	s.inFlight++
	fault := s.nextFault()
	if fault != FaultNone {
		s.counts.Faults++
	}
	latency, retryAfter := s.latency, s.retryAfter
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}()
	if fault != FaultNone {
		s.logf("upload to %s/%s: injecting fault %v", module, record, fault)
	}

	ctx := r.Context()
	switch fault {
	case FaultReset:
		_, _ = io.CopyN(io.Discard, r.Body, resetAfterBytes)
		s.kill(w)
		return
	case Fault500Before, Fault429:
		s.drain(r)
		if !s.wait(ctx, latency) {
			s.kill(w)
			return
		}
		if fault == Fault429 {
			writeError(w, errTooMany(retryAfter))
		} else {
			writeError(w, errInternal())
		}
		return
	}

	rec, e, err := s.receive(r)
	if err != nil {
		// The client went away mid-body, or sent a broken body: nothing
		// is stored, and an answer reaches it only in the second case.
		s.logf("upload to %s/%s: body unreadable: %v", module, record, err)
		e = newError(http.StatusBadRequest, "INVALID_REQUEST", "the multipart body could not be read")
	}
	var a Attachment
	if e == nil {
		// Read to the body's end (past the closing boundary), so that
		// net/http watches the connection and ctx ends when the client
		// gives up: FaultTimeout and the latency wait rely on it.
		s.drain(r)
		a, e = s.store(module, record, rec)
	}
	if e != nil {
		s.reject()
		s.drain(r)
		if !s.wait(ctx, latency) {
			s.kill(w)
			return
		}
		writeError(w, e)
		return
	}

	switch fault {
	case FaultResetAfter:
		s.kill(w)
		return
	case FaultTimeout:
		select {
		case <-ctx.Done():
		case <-s.done:
		}
		s.kill(w)
		return
	}
	if !s.wait(ctx, latency) {
		s.kill(w)
		return
	}
	if fault == Fault500After {
		writeError(w, errInternal())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": []any{successItem(a)}})
}

// nextFault picks the fault for an arriving upload. s.mu must be held.
func (s *Server) nextFault() Fault {
	if len(s.queue) > 0 {
		f := s.queue[0].f
		if s.queue[0].n--; s.queue[0].n == 0 {
			s.queue = s.queue[1:]
		}
		return f
	}
	if s.rng == nil {
		return FaultNone
	}
	u := s.rng.Float64()
	for _, c := range []struct {
		p float64
		f Fault
	}{
		{s.rates.Before500, Fault500Before},
		{s.rates.After500, Fault500After},
		{s.rates.TooMany, Fault429},
		{s.rates.Reset, FaultReset},
		{s.rates.ResetAfter, FaultResetAfter},
	} {
		if u < c.p {
			return c.f
		}
		u -= c.p
	}
	return FaultNone
}

// kill resets the connection without an answer: linger 0 makes the close
// send RST, as a crashed proxy or a dropped NAT entry does. A handler that
// gives up must kill rather than return, or net/http answers 200 for it.
func (s *Server) kill(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // the server then drops the connection
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// received is what an upload's body carried.
type received struct {
	name, sum   string
	size        int64
	link, title string
	file, isURL bool
}

// receive streams the multipart body: the file is hashed as it arrives and
// never held. It returns an API error for a body Zoho would refuse, and a
// plain error when the body could not be read to its end (client gone).
func (s *Server) receive(r *http.Request) (received, *apiError, error) {
	var rec received
	mr, err := r.MultipartReader()
	if err != nil {
		return rec, newError(http.StatusBadRequest, "INVALID_REQUEST", "the request body must be multipart/form-data"), nil
	}
	both := newError(http.StatusBadRequest, "INVALID_DATA", "attach either one file or one link per request")
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return rec, nil, err
		}
		switch p.FormName() {
		case "file":
			if rec.file || rec.isURL {
				return rec, both, nil
			}
			name := p.FileName()
			if name == "" {
				return rec, newError(http.StatusBadRequest, "INVALID_DATA", "the file has no name"), nil
			}
			if strings.EqualFold(path.Ext(name), ".exe") {
				return rec, newError(http.StatusBadRequest, "INVALID_DATA", "invalid file type"), nil
			}
			h := sha256.New()
			n, err := io.Copy(h, io.LimitReader(p, s.opts.MaxFileSize+1))
			if err != nil {
				return rec, nil, err
			}
			if n > s.opts.MaxFileSize {
				return rec, errFileSize(), nil
			}
			rec.file, rec.name, rec.size, rec.sum = true, name, n, hex.EncodeToString(h.Sum(nil))
		case "attachmentUrl", "title":
			b, err := io.ReadAll(io.LimitReader(p, maxFieldSize+1))
			if err != nil {
				return rec, nil, err
			}
			if len(b) > maxFieldSize {
				return rec, newError(http.StatusBadRequest, "INVALID_DATA", p.FormName()+" is too long"), nil
			}
			if p.FormName() == "title" {
				rec.title = string(b)
				break
			}
			if rec.file || rec.isURL {
				return rec, both, nil
			}
			rec.isURL, rec.link = true, strings.TrimSpace(string(b))
		default:
			if _, err := io.Copy(io.Discard, p); err != nil {
				return rec, nil, err
			}
		}
	}
	switch {
	case !rec.file && !rec.isURL:
		return rec, errMissing("file"), nil
	case rec.isURL:
		u, err := url.Parse(rec.link)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return rec, newError(http.StatusBadRequest, "INVALID_URL_PATTERN", "the attachmentUrl given is not a valid http or https URL"), nil
		}
		rec.name = rec.title
		if rec.name == "" {
			rec.name = rec.link
		}
	}
	return rec, nil, nil
}

// store keeps the attachment, refusing a link the record already has, and
// calls the OnUpload hook.
func (s *Server) store(module, record string, rec received) (Attachment, *apiError) {
	now := s.opts.Now().UTC().Truncate(time.Second)
	s.mu.Lock()
	if rec.isURL {
		for _, a := range s.atts {
			if a.Module == module && a.RecordID == record && a.Link == rec.link {
				s.mu.Unlock()
				return Attachment{}, newError(http.StatusBadRequest, "INVALID_DATA", "Attachment link already exists")
			}
		}
	}
	a := Attachment{
		ID:       strconv.FormatUint(s.nextID, 10),
		Module:   module,
		RecordID: record,
		FileName: rec.name,
		Size:     rec.size,
		SHA256:   rec.sum,
		Link:     rec.link,
		Created:  now,
	}
	s.nextID++
	s.atts = append(s.atts, a)
	hook := s.onUpload
	s.mu.Unlock()
	s.logf("stored %s/%s %q (%d bytes) as attachment %s", module, record, a.FileName, a.Size, a.ID)
	if hook != nil {
		hook(a)
	}
	return a, nil
}

type user struct {
	Name string `json:"name"`
	ID   string `json:"id"`
}

func successItem(a Attachment) any {
	created := a.Created.Format(timeLayout)
	return struct {
		Code    string `json:"code"`
		Details struct {
			ModifiedTime string `json:"Modified_Time"`
			ModifiedBy   user   `json:"Modified_By"`
			CreatedTime  string `json:"Created_Time"`
			ID           string `json:"id"`
			CreatedBy    user   `json:"Created_By"`
		} `json:"details"`
		Message string `json:"message"`
		Status  string `json:"status"`
	}{
		Code: "SUCCESS",
		Details: struct {
			ModifiedTime string `json:"Modified_Time"`
			ModifiedBy   user   `json:"Modified_By"`
			CreatedTime  string `json:"Created_Time"`
			ID           string `json:"id"`
			CreatedBy    user   `json:"Created_By"`
		}{created, user{userName, userID}, created, a.ID, user{userName, userID}},
		Message: "attachment uploaded successfully",
		Status:  "success",
	}
}

// list serves GET …/Attachments. Attachments come in the order stored. With
// fields, an item carries those fields plus "id" and the "$" meta fields
// ($link_url, $file_id, …), which Zoho always sends.
func (s *Server) list(w http.ResponseWriter, r *http.Request, major int, module, record string) {
	s.mu.Lock()
	s.counts.Lists++
	s.mu.Unlock()
	if e := s.check(r, module, record); e != nil {
		s.refuse(w, r, e)
		return
	}
	fields := r.URL.Query().Get("fields")
	page, perPage, ok := s.listParams(w, r, major)
	if !ok {
		return
	}

	var all []Attachment
	s.mu.Lock()
	for _, a := range s.atts {
		if a.Module == module && a.RecordID == record {
			all = append(all, a)
		}
	}
	s.mu.Unlock()
	if page-1 >= (len(all)+perPage-1)/perPage {
		w.WriteHeader(http.StatusNoContent) // no attachments, or past the last page
		return
	}
	start := (page - 1) * perPage
	end := min(start+perPage, len(all))

	var want map[string]bool
	if fields != "" {
		want = map[string]bool{"id": true}
		for f := range strings.SplitSeq(fields, ",") {
			want[strings.TrimSpace(f)] = true
		}
	}
	items := make([]map[string]any, 0, end-start)
	for _, a := range all[start:end] {
		item := listItem(a)
		for k := range item {
			if want != nil && !want[k] && !strings.HasPrefix(k, "$") {
				delete(item, k)
			}
		}
		items = append(items, item)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"data": items,
		"info": map[string]any{
			"per_page":     perPage,
			"count":        len(items),
			"page":         page,
			"more_records": end < len(all),
		},
	})
}

func listItem(a Attachment) map[string]any {
	t := a.Created.Format(timeLayout)
	u := user{userName, userID}
	item := map[string]any{
		"id":            a.ID,
		"File_Name":     a.FileName,
		"Size":          strconv.FormatInt(a.Size, 10),
		"Created_Time":  t,
		"Modified_Time": t,
		"Created_By":    u,
		"Modified_By":   u,
		"Owner":         u,
		"Parent_Id":     map[string]string{"id": a.RecordID, "name": a.Module + " " + a.RecordID},
		"$se_module":    a.Module,
	}
	if a.Link != "" {
		item["$type"] = "Link_URL"
		item["$link_url"] = a.Link
	} else {
		item["$type"] = "Attachment"
		item["$file_id"] = "file_" + a.ID
	}
	return item
}

// listParams reads the query every list call takes: fields (required from v3 on),
// page and per_page (at most 200). It answers the request itself when they are wrong.
func (s *Server) listParams(w http.ResponseWriter, r *http.Request, major int) (page, perPage int, ok bool) {
	q := r.URL.Query()
	if major >= 3 && q.Get("fields") == "" {
		s.refuse(w, r, errMissing("fields"))
		return 0, 0, false
	}
	page, ok1 := intParam(q, "page", 1)
	perPage, ok2 := intParam(q, "per_page", 200)
	if !ok1 || !ok2 {
		s.refuse(w, r, newError(http.StatusBadRequest, "INVALID_DATA", "page and per_page must be positive integers"))
		return 0, 0, false
	}
	return page, min(perPage, 200), true
}

func intParam(q url.Values, name string, def int) (int, bool) {
	v := q.Get(name)
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	return n, err == nil && n >= 1
}

// delete serves DELETE …/Attachments/{id}.
func (s *Server) delete(w http.ResponseWriter, r *http.Request, module, record, id string) {
	s.mu.Lock()
	s.counts.Deletes++
	s.mu.Unlock()
	if e := s.check(r, module, record); e != nil {
		s.refuse(w, r, e)
		return
	}
	s.mu.Lock()
	found := false
	for i, a := range s.atts {
		if a.ID == id && a.Module == module && a.RecordID == record {
			s.atts = append(s.atts[:i:i], s.atts[i+1:]...)
			found = true
			break
		}
	}
	s.mu.Unlock()
	if !found {
		e := newError(http.StatusBadRequest, "INVALID_DATA", "the id given seems to be invalid")
		e.details = map[string]any{"id": id}
		s.refuse(w, r, e)
		return
	}
	s.logf("deleted attachment %s of %s/%s", id, module, record)
	writeJSON(w, http.StatusOK, map[string]any{"data": []any{map[string]any{
		"code": "SUCCESS", "details": map[string]string{"id": id}, "message": "record deleted", "status": "success",
	}}})
}
