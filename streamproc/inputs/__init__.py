"""Where replay's and what-if's events come from: a file (`--input`) or a range of a Kafka topic
(`--from-topic`). Above both `replay` (which it feeds) and `kafka` (which it reads), so the pure
replay simulator stays free of Kafka."""
