#!/bin/sh
# Mails one change of a P2C2R alert (docs/deploy.md, "Alerts"). The scheduler
# runs it with --alert-exec, without a shell, once per change of state:
#   p2c2r-scheduler --alert-exec /usr/local/share/p2c2r/alerts/mail.sh
# with the alert in the environment (P2C2R_ALERT_NAME, _STATE firing|resolved,
# _VALUE, _THRESHOLD, _SINCE, _SINCE_ISO, _SUMMARY, _DETAIL, _HOST).
# Settings, from the scheduler's environment:
#   P2C2R_ALERT_MAIL_TO     who gets it                  [root]
#   P2C2R_ALERT_MAIL_FROM   the From: line               [p2c2r@HOST]
#   SENDMAIL                the sendmail program         [/usr/sbin/sendmail]
# Any MTA's sendmail works (Debian: exim4, postfix, msmtp-mta, dma).
set -eu
to=${P2C2R_ALERT_MAIL_TO:-root}
host=${P2C2R_ALERT_HOST:-$(hostname)}
from=${P2C2R_ALERT_MAIL_FROM:-p2c2r@$host}
state=$(printf '%s' "${P2C2R_ALERT_STATE:-?}" | tr '[:lower:]' '[:upper:]')
# Header lines hold only what we put there: no line breaks from the values
clean () { printf '%s' "$1" | tr -d '\r\n' | cut -c1-200; }
{
  printf 'To: %s\n' "$(clean "$to")"
  printf 'From: %s\n' "$(clean "$from")"
  printf 'Subject: [p2c2r] %s %s on %s\n' "$state" "$(clean "${P2C2R_ALERT_NAME:-?}")" "$(clean "$host")"
  printf 'Content-Type: text/plain; charset=utf-8\n\n'
  printf 'alert:     %s\n' "${P2C2R_ALERT_NAME:-?}"
  printf 'state:     %s since %s\n' "${P2C2R_ALERT_STATE:-?}" "${P2C2R_ALERT_SINCE_ISO:-?}"
  printf 'value:     %s (threshold %s)\n' "${P2C2R_ALERT_VALUE:-?}" "${P2C2R_ALERT_THRESHOLD:-?}"
  printf 'what:      %s\n' "${P2C2R_ALERT_SUMMARY:-}"
  [ -n "${P2C2R_ALERT_DETAIL:-}" ] && printf 'detail:    %s\n' "$P2C2R_ALERT_DETAIL"
  printf '\nSee: p2c2r-ctl alerts; the gateway'"'"'s /api/stats.\n'
} | "${SENDMAIL:-/usr/sbin/sendmail}" -t -i
