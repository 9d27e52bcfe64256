package zoho_test

import (
	"bytes"
	"io"
	"testing"

	"crmdrop/zoho"
	"crmdrop/zoho/zohotest"
)

func TestDeleteAttachmentAgainstFake(t *testing.T) {
	fake := zohotest.NewServer(t, zohotest.Options{})
	c, err := zoho.New(zoho.Options{
		AccountsURL: fake.URL(), APIDomain: fake.URL(),
		ClientID: zohotest.DefaultClientID, ClientSecret: zohotest.DefaultClientSecret, RefreshToken: zohotest.DefaultRefreshToken,
	})
	if err != nil {
		t.Fatal(err)
	}
	open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader([]byte("abc"))), nil }
	id, err := c.UploadFile(t.Context(), "Leads", "1", "a.txt", 3, open)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteAttachment(t.Context(), "Leads", "1", id); err != nil {
		t.Fatalf("DeleteAttachment: %v", err)
	}
	if n := len(fake.Uploads()); n != 0 {
		t.Errorf("fake holds %d attachments after delete, want 0", n)
	}
	if err := c.DeleteAttachment(t.Context(), "Leads", "1", id); err == nil {
		t.Error("deleting a missing attachment succeeded")
	}
}
