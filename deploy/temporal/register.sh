#!/bin/sh
# One-shot job (temporalio/admin-tools): make sure the namespace exists and holds the search
# attributes the invitation workflow sets, then wait until a list query accepts all of them.
#
# Environment:
#   TEMPORAL_ADDRESS     the frontend, host:port (default temporal:7233)
#   NAMESPACE            the namespace the API and worker use (default "default")
#   NAMESPACE_RETENTION  how long closed invitations stay visible, used only when this job
#                        creates the namespace (default 30d)
#   SEARCH_ATTRIBUTES    space-separated Name=Type pairs: invites.temporal.SEARCH_ATTRIBUTES
# The `temporal` CLI also reads TEMPORAL_API_KEY and TEMPORAL_TLS from the environment.
#
# Safe to re-run: an existing namespace or attribute is left as it is. An attribute that
# exists with another type stops the job, since the workflow could not set it.
set -eu

ADDRESS=${TEMPORAL_ADDRESS:-temporal:7233}
NAMESPACE=${NAMESPACE:-default}
RETENTION=${NAMESPACE_RETENTION:-30d}
: "${SEARCH_ATTRIBUTES:?set SEARCH_ATTRIBUTES to Name=Type pairs}"

# Retries a command every 2 s, up to $1 times; its output is shown only when it gives up.
retry() {
  attempts=$1
  shift
  n=0
  until out=$("$@" 2>&1); do
    n=$((n + 1))
    if [ "$n" -ge "$attempts" ]; then
      echo "$out" >&2
      return 1
    fi
    sleep 2
  done
}

echo "Waiting for Temporal at ${ADDRESS}..."
retry 90 temporal operator cluster health --address "$ADDRESS"

if temporal operator namespace describe --namespace "$NAMESPACE" --address "$ADDRESS" >/dev/null 2>&1; then
  echo "Namespace ${NAMESPACE} exists."
else
  temporal operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION" --address "$ADDRESS"
  echo "Namespace ${NAMESPACE} created (retention ${RETENTION})."
fi

probe=""
for pair in $SEARCH_ATTRIBUTES; do
  name=${pair%%=*}
  type=${pair#*=}
  # A namespace created a moment ago takes a few seconds to reach every server role.
  n=0
  until out=$(temporal operator search-attribute create --namespace "$NAMESPACE" \
    --name "$name" --type "$type" --address "$ADDRESS" 2>&1); do
    case $out in
      *"different type"*)
        echo "$out" >&2
        echo "Search attribute ${name} exists with another type than ${type}: fix it by hand." >&2
        exit 1
        ;;
      *"already exists"* | *"already registered"*) break ;;
    esac
    n=$((n + 1))
    if [ "$n" -ge 30 ]; then
      echo "$out" >&2
      exit 1
    fi
    sleep 2
  done
  echo "Search attribute ${name} (${type}) is registered."
  case $type in
    Datetime) clause="${name} > '2000-01-01T00:00:00Z'" ;;
    *) clause="${name} = 'probe'" ;;
  esac
  probe="${probe:+$probe AND }${clause}"
done

# The server caches search attributes; wait until a query naming every one is accepted, so
# the API and the worker (started after this job) can use them at once.
retry 60 temporal workflow count --namespace "$NAMESPACE" --query "$probe" --address "$ADDRESS"
echo "Namespace ${NAMESPACE} is ready for invitations."
