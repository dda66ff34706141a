"""``python -m tests.fakes.celery_to_fake_apns PORT -A journeyhub worker ...``: a Celery worker
whose aioapns clients dial the loopback APNs gateway on PORT (apns_server.route_aioapns_to);
its pool processes are forked from it and dial there too."""

import sys

from celery.__main__ import main

from tests.fakes.apns_server import route_aioapns_to

if __name__ == "__main__":
    route_aioapns_to(int(sys.argv.pop(1)))
    main()
