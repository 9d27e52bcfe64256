package daemon

import (
	"context"
	"io"
	"time"

	"crmdrop/uploader"
	"crmdrop/zoho"
)

// remote adapts *zoho.Client to the uploader's Remote, keeping the two packages
// ignorant of each other.
type remote struct{ c *zoho.Client }

var _ uploader.Remote = remote{}

func (r remote) UploadFile(ctx context.Context, dst uploader.Target, name string, size int64, open func() (io.ReadCloser, error)) (string, error) {
	return r.c.UploadFile(ctx, dst.Module, dst.RecordID, name, size, open)
}

func (r remote) UploadLink(ctx context.Context, dst uploader.Target, link, title string) (string, error) {
	return r.c.UploadLink(ctx, dst.Module, dst.RecordID, link, title)
}

func (r remote) List(ctx context.Context, dst uploader.Target) ([]uploader.Attachment, error) {
	list, err := r.c.ListAttachments(ctx, dst.Module, dst.RecordID)
	if err != nil {
		return nil, err
	}
	out := make([]uploader.Attachment, len(list))
	for i, a := range list {
		out[i] = uploader.Attachment{ID: a.ID, Name: a.FileName, Size: a.Size, Link: a.LinkURL, Created: a.Created}
	}
	return out, nil
}

func (r remote) Delete(ctx context.Context, dst uploader.Target, id string) error {
	return r.c.DeleteAttachment(ctx, dst.Module, dst.RecordID, id)
}

// classify maps zoho's classes onto the uploader's.
func classify(err error) (uploader.Class, time.Duration) {
	c, hint := zoho.Classify(err)
	switch c {
	case zoho.Ambiguous:
		return uploader.Ambiguous, hint
	case zoho.Permanent:
		return uploader.Permanent, hint
	case zoho.Global:
		return uploader.Global, hint
	}
	return uploader.Transient, hint
}
