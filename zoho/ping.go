package zoho

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// Ping makes one cheap authenticated read: the id of the first record of module
// (GET /crm/{version}/{module}?fields=id&per_page=1), minting a token first if none
// is held. `crmdrop check` calls it to prove that the token reaches the org's data.
//
// It reads records rather than the org or module settings because those need scopes
// (ZohoCRM.org.READ, ZohoCRM.settings.modules.READ) that crmdrop's own scope
// (ZohoCRM.modules.ALL) does not include: a working set-up would fail the check. A
// module without records (HTTP 204) is a success. Errors are those of ListAttachments:
// *APIError (OAUTH_SCOPE_MISMATCH, NO_PERMISSION, INVALID_MODULE, …), *TokenError,
// *NetError. Safe for concurrent use; on cancellation it returns an error wrapping
// ctx.Err().
func (c *Client) Ping(ctx context.Context, module string) error {
	if !validModule(module) {
		return &localError{class: Permanent, msg: fmt.Sprintf("zoho: %q is not a module API name (letters, digits and _ only)", module)}
	}
	path := "/crm/" + url.PathEscape(c.version) + "/" + module
	// fields is required from v3 on and harmless on v2.
	q := url.Values{"fields": {"id"}, "per_page": {"1"}}
	res, err := c.do(ctx, "read "+module, http.MethodGet, path, q, nil)
	if err != nil {
		return err
	}
	if res.status == http.StatusOK || res.status == http.StatusNoContent {
		return nil
	}
	return c.apiError(res)
}
