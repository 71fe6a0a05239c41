"""An SMTP server for the alert tests: aiosmtpd's Controller on
127.0.0.1:PORT, writing each message it takes to a file in DIR.

Usage: maildir_server.py PORT DIR
"""

import os
import signal
import sys
import threading

from aiosmtpd.controller import Controller


class ToFiles:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        path = os.path.join(self.directory, f"{self.count:04}.eml")
        partial = path + ".part"
        with open(partial, "wb") as out:
            out.write(envelope.content)
        # Whole or not at all: a reader never sees half a message.
        os.rename(partial, path)
        return "250 Message accepted for delivery"


def main():
    port, directory = int(sys.argv[1]), sys.argv[2]
    controller = Controller(ToFiles(directory), hostname="127.0.0.1", port=port)
    controller.start()
    print(f"smtp server listening on 127.0.0.1:{port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
