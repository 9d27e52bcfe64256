package zoho

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkUploadFile is the client's side of one upload over loopback: token reuse,
// the streamed multipart body through its pipe, the answer's JSON. The server reads
// the body to its end and answers at once.
func BenchmarkUploadFile(b *testing.B) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth/v2/token", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, `{"access_token":"1000.bench","token_type":"Bearer","expires_in":3600}`)
	})
	mux.HandleFunc("POST /crm/v2/Leads/{record}/Attachments", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, http.StatusOK, successBody("3477061000000000001"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c, err := New(Options{AccountsURL: srv.URL, APIDomain: srv.URL, ClientID: testClientID, ClientSecret: testSecret, RefreshToken: testRefresh})
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{32 << 10, 8 << 20} {
		b.Run(fmt.Sprintf("size=%dKiB", size>>10), func(b *testing.B) {
			body := strings.Repeat("x", size)
			open := func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				id, err := c.UploadFile(b.Context(), "Leads", testRecord, "scan.pdf", int64(size), open)
				if err != nil || id != "3477061000000000001" {
					b.Fatalf("UploadFile = %q, %v", id, err)
				}
			}
		})
	}
}
