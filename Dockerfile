# cronmesh: one image for schedulers and executors.
#
#   docker build -t cronmesh .
#   docker run -v cronmesh-data:/var/lib/cronmesh -p 7070:7070 cronmesh
#
# Settings come from CRONMESH_* variables or a mounted --config file (see
# docs/CONFIGURATION.md); docker-compose.yml runs a 3-node cluster.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p cronmesh \
    && strip target/release/cronmesh

FROM debian:bookworm-slim
# curl for the health check; sh and coreutils for the shell jobs executors
# run; tini as PID 1, so the orphaned children of killed jobs are reaped
# (the kernel hands orphans to PID 1, and cronmesh is no init).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/cronmesh cronmesh \
    && install -d -o cronmesh -g cronmesh -m 0750 /var/lib/cronmesh
COPY --from=build /src/target/release/cronmesh /usr/local/bin/cronmesh
USER cronmesh
WORKDIR /var/lib/cronmesh
VOLUME ["/var/lib/cronmesh"]
# admin API, Raft, gossip (UDP), executor
EXPOSE 7070 7071 7072/udp 7080
# The data directory of a scheduler, and of an executor (its leader term and
# the records that let a restarted executor end the runs a crash left behind).
ENV CRONMESH_DATA_DIR=/var/lib/cronmesh \
    CRONMESH_HTTP=0.0.0.0:7070
# /healthz answers without a token; a node that cannot serve fails it.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
    CMD curl -fsS "http://127.0.0.1:${CRONMESH_HEALTH_PORT:-7070}/healthz" || exit 1
ENTRYPOINT ["/usr/bin/tini", "-s", "--", "cronmesh"]
CMD ["server"]
