"""evos: an open operating system for smart electric cars."""

import os

# evos's processes start apps with fork+exec and never use gRPC in a forked child: gRPC's fork handlers (which
# only print "skipping fork() handlers" when other threads use gRPC) are not wanted. Read when grpc is imported.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

__version__ = "0.1.0"
