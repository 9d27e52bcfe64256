#!/usr/bin/env bash
# naive.sh: the script an admin would write instead of crmdrop, for the bench's side by
# side. It follows the vendor's samples: one upload at a time, the file posted with
# curl -F as soon as it is closed, no settle, no ledger, no retry, nothing moved.
#
# Environment: INBOX (the folder), ZOHO_URL (accounts server and API domain: the bench's
# fake serves both), CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN.
set -u
# Stopped, take inotifywait and curl down too (the bench runs this in its own group).
# The pipeline runs in the background so that bash is in `wait`, where a trap runs at
# once, rather than waiting for a foreground pipeline that never ends.
trap 'trap "" TERM; kill 0' TERM

TOKEN=$(curl -s -X POST "$ZOHO_URL/oauth/v2/token" \
	-d grant_type=refresh_token \
	--data-urlencode "client_id=$CLIENT_ID" \
	--data-urlencode "client_secret=$CLIENT_SECRET" \
	--data-urlencode "refresh_token=$REFRESH_TOKEN" |
	sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
if [ -z "$TOKEN" ]; then
	echo "naive.sh: no access token from $ZOHO_URL" >&2
	exit 1
fi

inotifywait -m -r -e close_write --format '%w%f' "$INBOX" | while IFS= read -r f; do
	rel=${f#"$INBOX"/}   # Leads/3477061000000100001 Acme Ltd/scan-0001.pdf
	module=${rel%%/*}    # Leads
	rest=${rel#*/}
	record=${rest%%/*}   # 3477061000000100001 Acme Ltd
	record=${record%% *} # 3477061000000100001
	curl -s -o /dev/null -H "Authorization: Zoho-oauthtoken $TOKEN" \
		-F "file=@$f" "$ZOHO_URL/crm/v2/$module/$record/Attachments"
done &
wait
