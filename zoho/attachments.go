package zoho

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Attachment is one attachment a record has, as Zoho lists it. LinkURL is set for
// links; Created has one-second precision and comes from Zoho's clock.
type Attachment struct {
	ID, FileName string
	Size         int64
	Created      time.Time
	LinkURL      string
}

func (c *Client) attachmentsPath(module, recordID string) (string, error) {
	if !validModule(module) {
		return "", &localError{class: Permanent, msg: fmt.Sprintf("zoho: %q is not a module API name (letters, digits and _ only)", module)}
	}
	if !allDigits(recordID) {
		return "", &localError{class: Permanent, msg: fmt.Sprintf("zoho: %q is not a record id (digits only)", recordID)}
	}
	return "/crm/" + url.PathEscape(c.version) + "/" + module + "/" + recordID + "/Attachments", nil
}

func validModule(s string) bool {
	for _, r := range s {
		if !(r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return s != ""
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// errAbandoned stops a body producer whose request is over.
var errAbandoned = errors.New("request over")

// UploadFile attaches a file of exactly size bytes, named name, to the record.
// The body is streamed (multipart/form-data, field "file", exact ContentLength), never
// held in memory. open is called once per HTTP attempt, so at most twice: once more
// after Zoho rejects the token and it is refreshed; each reader is closed before
// UploadFile returns (unless ctx ends while a Read blocks). A file that turns out
// shorter or longer than size fails the attempt with an error naming the file.
// Safe for concurrent use; on cancellation it returns an error wrapping ctx.Err().
func (c *Client) UploadFile(ctx context.Context, module, recordID, name string, size int64, open func() (io.ReadCloser, error)) (attachmentID string, err error) {
	path, err := c.attachmentsPath(module, recordID)
	if err != nil {
		return "", err
	}
	if name == "" || size < 0 {
		return "", &localError{class: Permanent, msg: fmt.Sprintf("zoho: upload: bad file name %q or size %d", name, size)}
	}
	res, err := c.do(ctx, "upload", http.MethodPost, path, nil, func() (*reqBody, error) {
		f, err := open()
		if err != nil {
			return nil, fmt.Errorf("zoho: open %s: %w", name, err)
		}
		return streamFile(name, size, f), nil
	})
	if err != nil {
		return "", err
	}
	return c.createdID(res)
}

// streamFile produces the multipart body through a pipe as the transport reads it.
func streamFile(name string, size int64, f io.ReadCloser) *reqBody {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	length := multipartOverhead(mw.Boundary(), name) + size
	done := make(chan error, 1)
	go func() {
		defer f.Close()
		var local error // the file's fault, as opposed to the request going away
		part, err := mw.CreateFormFile("file", name)
		if err == nil {
			src := &readErr{r: f}
			var n int64
			n, err = io.Copy(part, io.LimitReader(src, size))
			switch {
			case src.err != nil:
				local = fmt.Errorf("zoho: read %s: %w", name, src.err)
			case err == nil && n < size:
				local = fmt.Errorf("zoho: %s shrank while uploading: read %d of %d bytes", name, n, size)
			case err == nil:
				// One byte more than announced means the file grew: the upload
				// would be a silent truncation, so it must fail.
				var one [1]byte
				if k, _ := io.ReadFull(src, one[:]); k > 0 {
					local = fmt.Errorf("zoho: %s grew while uploading: more than %d bytes", name, size)
				} else if src.err != nil && src.err != io.EOF {
					local = fmt.Errorf("zoho: read %s: %w", name, src.err)
				}
			}
			if local != nil {
				err = local
			}
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
		done <- local
	}()
	return &reqBody{
		r:           pr,
		length:      length,
		contentType: mw.FormDataContentType(),
		finish: func(ctx context.Context) error {
			pr.CloseWithError(errAbandoned)
			select {
			case err := <-done:
				return err
			case <-ctx.Done():
				return nil // a Read on the file is stuck; let it finish alone
			}
		},
	}
}

// readErr remembers the source's own error, which io.Copy mixes with write errors.
type readErr struct {
	r   io.Reader
	err error
}

func (r *readErr) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil {
		r.err = err
		if err == io.EOF {
			r.err = nil
		}
	}
	return n, err
}

// multipartOverhead is the size of a one-file multipart body minus the file:
// the same writer, with the same boundary, run against a counter.
func multipartOverhead(boundary, name string) int64 {
	var n countWriter
	mw := multipart.NewWriter(&n)
	if err := mw.SetBoundary(boundary); err != nil {
		panic(err) // the boundary came from multipart.NewWriter
	}
	mw.CreateFormFile("file", name)
	mw.Close()
	return int64(n)
}

type countWriter int64

func (w *countWriter) Write(p []byte) (int, error) {
	*w += countWriter(len(p))
	return len(p), nil
}

// UploadLink attaches a link (multipart fields attachmentUrl and title) to the record.
// A link the record already has comes back as an *APIError for which IsLinkExists is
// true. Safe for concurrent use; on cancellation it returns an error wrapping ctx.Err().
func (c *Client) UploadLink(ctx context.Context, module, recordID, link, title string) (attachmentID string, err error) {
	path, err := c.attachmentsPath(module, recordID)
	if err != nil {
		return "", err
	}
	if link == "" {
		return "", &localError{class: Permanent, msg: "zoho: upload link: the link is empty"}
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("attachmentUrl", link)
	if title != "" {
		mw.WriteField("title", title)
	}
	mw.Close()
	body := buf.Bytes()
	res, err := c.do(ctx, "upload link", http.MethodPost, path, nil, func() (*reqBody, error) {
		return &reqBody{
			r:           io.NopCloser(bytes.NewReader(body)),
			length:      int64(len(body)),
			contentType: mw.FormDataContentType(),
			finish:      func(context.Context) error { return nil },
		}, nil
	})
	if err != nil {
		return "", err
	}
	return c.createdID(res)
}

// createdID reads data[0].details.id from a successful create.
func (c *Client) createdID(res *response) (string, error) {
	if res.status == http.StatusOK || res.status == http.StatusCreated || res.status == http.StatusAccepted {
		var b struct {
			Data []struct {
				Code    string `json:"code"`
				Details struct {
					ID jsonString `json:"id"`
				} `json:"details"`
			} `json:"data"`
		}
		if json.Unmarshal(res.body, &b) == nil && len(b.Data) > 0 && b.Data[0].Code == "SUCCESS" && b.Data[0].Details.ID != "" {
			return string(b.Data[0].Details.ID), nil
		}
	}
	return "", c.apiError(res)
}

// jsonString accepts a JSON string or number: ids are strings in Zoho's JSON, but
// nothing is lost by tolerating a number.
type jsonString string

func (s *jsonString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = jsonString(v)
		return nil
	}
	if string(b) == "null" {
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*s = jsonString(n)
	return nil
}

// perPage is the API's maximum page size; maxPages bounds a server that never says
// "no more records".
const (
	perPage  = 200
	maxPages = 1000
)

// ListAttachments returns every attachment of the record (all pages; a record with
// none gives an empty list). Safe for concurrent use; on cancellation it returns an
// error wrapping ctx.Err().
func (c *Client) ListAttachments(ctx context.Context, module, recordID string) ([]Attachment, error) {
	path, err := c.attachmentsPath(module, recordID)
	if err != nil {
		return nil, err
	}
	var out []Attachment
	for page := 1; page <= maxPages; page++ {
		q := url.Values{
			"fields":   {"id,File_Name,Size,Created_Time,$link_url"},
			"page":     {strconv.Itoa(page)},
			"per_page": {strconv.Itoa(perPage)},
		}
		res, err := c.do(ctx, "list attachments", http.MethodGet, path, q, nil)
		if err != nil {
			return nil, err
		}
		if res.status == http.StatusNoContent {
			return out, nil
		}
		if res.status != http.StatusOK {
			return nil, c.apiError(res)
		}
		var b struct {
			Data []struct {
				ID       jsonString `json:"id"`
				FileName string     `json:"File_Name"`
				Size     jsonString `json:"Size"`
				Created  string     `json:"Created_Time"`
				LinkURL  string     `json:"$link_url"`
			} `json:"data"`
			Info struct {
				MoreRecords bool `json:"more_records"`
			} `json:"info"`
		}
		if err := json.Unmarshal(res.body, &b); err != nil {
			return nil, &APIError{Status: res.status, Code: "INVALID_RESPONSE", Message: "unreadable attachment list: " + err.Error()}
		}
		for _, d := range b.Data {
			a := Attachment{ID: string(d.ID), FileName: d.FileName, LinkURL: d.LinkURL}
			if d.Size != "" {
				if a.Size, err = strconv.ParseInt(string(d.Size), 10, 64); err != nil {
					c.log.Warn("zoho attachment with unreadable Size", "id", a.ID, "size", string(d.Size))
				}
			}
			if d.Created != "" {
				if a.Created, err = time.Parse(time.RFC3339, d.Created); err != nil {
					c.log.Warn("zoho attachment with unreadable Created_Time", "id", a.ID, "created", d.Created)
				}
			}
			out = append(out, a)
		}
		if !b.Info.MoreRecords || len(b.Data) == 0 {
			return out, nil
		}
	}
	return nil, &APIError{Status: http.StatusOK, Code: "INVALID_RESPONSE", Message: fmt.Sprintf("attachment list longer than %d pages", maxPages)}
}
