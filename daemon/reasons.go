package daemon

import (
	"errors"
	"fmt"

	"crmdrop/inbox"
	"crmdrop/store"
	"crmdrop/zoho"
)

// apiReason turns a permanent API refusal into words for staff.
func apiReason(e store.Entry, err error) inbox.Reason {
	rec := fmt.Sprintf("%s record %s", e.Module, e.RecordID)
	var ae *zoho.APIError
	if !errors.As(err, &ae) {
		return inbox.Reason{What: "Zoho CRM refused the file: " + err.Error(), Fix: "Ask your administrator to look at crmdrop's log."}
	}
	if zoho.IsLinkExists(err) {
		return inbox.Reason{What: fmt.Sprintf("%s already has this link attached.", rec), Fix: "Nothing to do: the link is already on the record. You can delete this shortcut."}
	}
	switch ae.Code {
	case "INVALID_DATA":
		return inbox.Reason{
			What: fmt.Sprintf("Zoho CRM refused the file for %s: %s.", rec, ae.Message),
			Fix:  "Check that the record id in the folder name is right and that the record still exists, and that the file type is allowed.",
		}
	case "FILE_SIZE_MORE_THAN_ALLOWED_SIZE":
		return inbox.Reason{
			What: "The file is larger than your Zoho CRM account accepts for one attachment.",
			Fix:  "Make the file smaller (scan at a lower resolution, compress it, or split it) and drop it again.",
		}
	case "INVALID_MODULE":
		return inbox.Reason{
			What: fmt.Sprintf("Zoho CRM does not know the module %q.", e.Module),
			Fix:  "Check the module folder's name, or ask your administrator to add the module's API name to custom_modules.",
		}
	case "INVALID_URL_PATTERN":
		return inbox.Reason{
			What: "Zoho CRM did not accept the web address in this shortcut.",
			Fix:  "Open the shortcut, check the address works in a browser, and create the shortcut again.",
		}
	}
	return inbox.Reason{What: fmt.Sprintf("Zoho CRM refused the file for %s: %s (%s).", rec, ae.Message, ae.Code), Fix: "Ask your administrator to look at crmdrop's log."}
}
