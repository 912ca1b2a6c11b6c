#!/bin/bash
# A person's browser for the code flow, made of curl: opens the
# authorization URL kubegate login printed, follows redirects, signs in as
# LOGIN on the provider's (development) login page, gives consent, and
# finally requests the loopback redirect with the code, as a browser would.
#   browse.sh CA_FILE AUTHORIZATION_URL LOGIN
set -u
CA=$1; URL=$2; LOGIN=$3; JAR=$(mktemp)
for step in $(seq 12); do
  if [[ "$URL" == http://127.0.0.1:*/callback* ]]; then curl -s "$URL"; rm -f $JAR; exit 0; fi
  OUT=$(mktemp)
  CODE=$(curl -s -c $JAR -b $JAR --cacert $CA -o $OUT -w "%{http_code} %{redirect_url}" "$URL")
  NEXT=${CODE#* }
  if [[ -n "$NEXT" ]]; then URL=$NEXT; continue; fi
  ACTION=$(grep -o 'action="[^"]*"' $OUT | head -1 | sed 's/action="//; s/"$//')
  PROMPT=$(grep -o 'name="prompt" value="[^"]*"' $OUT | head -1 | sed 's/.*value="//; s/"$//')
  [ -z "$ACTION" ] && { echo "stuck at $URL"; cat $OUT | head -c 500; exit 1; }
  if [ "$PROMPT" = login ]; then DATA="prompt=login&login=$LOGIN&password=x"; else DATA="prompt=$PROMPT"; fi
  URL=$(curl -s -c $JAR -b $JAR --cacert $CA -o /dev/null -w "%{redirect_url}" -X POST -d "$DATA" "$ACTION")
done
echo "too many steps"; exit 1
