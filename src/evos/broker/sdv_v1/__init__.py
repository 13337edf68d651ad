"""Generated gRPC modules of ``sdv.databroker.v1`` (the KUKSA databroker's API before 0.7, which Eclipse Velocitas
apps speak): ``types_pb2``, ``broker_pb2`` / ``broker_pb2_grpc`` (the ``Broker`` service) and ``collector_pb2`` /
``collector_pb2_grpc`` (the ``Collector`` service for feeders). See ``proto/README.md`` for their source."""
