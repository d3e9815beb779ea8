"""The change-event stream connector: Debezium envelopes (``source``) from RabbitMQ
or Redis Streams (``transports``), and the kind that puts them together (``kind``)."""
