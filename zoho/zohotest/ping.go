package zohotest

import (
	"net/http"
	"strings"
)

// records serves GET /crm/{version}/{Module}: the ids of the module's records, as
// Zoho's Get Records API lists them. The fake keeps no records of its own, so the
// records are those that have attachments, in the order their first attachment was
// stored; a module without any answers 204, as Zoho does for an empty module.
// zoho.Client.Ping (and so `crmdrop check`) uses it as its one cheap read.
func (s *Server) records(w http.ResponseWriter, r *http.Request, major int, module string) {
	s.mu.Lock()
	s.counts.Records++
	s.mu.Unlock()
	if e := s.checkModule(r, module); e != nil {
		s.refuse(w, r, e)
		return
	}
	page, perPage, ok := s.listParams(w, r, major)
	if !ok {
		return
	}

	var ids []string
	seen := map[string]bool{}
	s.mu.Lock()
	for _, a := range s.atts {
		if a.Module == module && !seen[a.RecordID] {
			seen[a.RecordID] = true
			ids = append(ids, a.RecordID)
		}
	}
	s.mu.Unlock()
	start := (page - 1) * perPage
	if start >= len(ids) || start < 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	end := min(start+perPage, len(ids))
	items := make([]map[string]string, 0, end-start)
	for _, id := range ids[start:end] {
		items = append(items, map[string]string{"id": id})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"data": items,
		"info": map[string]any{
			"per_page":     perPage,
			"count":        len(items),
			"page":         page,
			"more_records": end < len(ids),
		},
	})
}

// checkModule is check without a record: the token, the scope and the module.
func (s *Server) checkModule(r *http.Request, module string) *apiError {
	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Zoho-oauthtoken ")
	t := s.tokens[tok]
	switch {
	case !ok || t == nil:
		return newError(http.StatusUnauthorized, "AUTHENTICATION_FAILURE", "Authentication failed")
	case t.revoked || !now.Before(t.expires):
		return newError(http.StatusUnauthorized, "INVALID_TOKEN", "invalid oauth token")
	case s.scopeMismatch:
		return newError(http.StatusUnauthorized, "OAUTH_SCOPE_MISMATCH", "invalid oauth scope to access this URL")
	case !s.modules[module]:
		return newError(http.StatusBadRequest, "INVALID_MODULE", "the module name given seems to be invalid")
	}
	return nil
}
