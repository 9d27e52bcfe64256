package zoho

import (
	"context"
	"encoding/json"
	"net/http"
)

// DeleteAttachment removes one attachment from a record. crmdrop uses it to take back
// an upload whose file changed while it was being sent: what was stored is neither
// the old nor the new file.
func (c *Client) DeleteAttachment(ctx context.Context, module, recordID, attachmentID string) error {
	path, err := c.attachmentsPath(module, recordID)
	if err != nil {
		return err
	}
	if !allDigits(attachmentID) {
		return &APIError{Code: "INVALID_DATA", Message: "attachment id must be digits"}
	}
	res, err := c.do(ctx, "delete attachment", http.MethodDelete, path+"/"+attachmentID, nil, nil)
	if err != nil {
		return err
	}
	if res.status == http.StatusOK {
		var b struct {
			Data []struct {
				Code string `json:"code"`
			} `json:"data"`
		}
		if json.Unmarshal(res.body, &b) == nil && len(b.Data) > 0 && b.Data[0].Code == "SUCCESS" {
			return nil
		}
	}
	return c.apiError(res)
}
