// Package deploy holds opsmetrics' deployment assets: the container image
// (Dockerfile), a Docker Compose stack that runs the whole pipeline on a
// laptop with Kafka, ClickHouse, Grafana, Prometheus and Alertmanager
// (compose/), plain Kubernetes manifests applied with kustomize (k8s/) and a
// hardened systemd unit (systemd/).
//
// The package has no code. Its test checks what can be checked without
// Docker or a cluster: that every file parses, that the pieces refer to each
// other consistently (selectors, ports, secrets, volumes, probes), that every
// image is pinned, and that every opsmetrics command line and OPSMETRICS_*
// variable in the assets is one the binary's --help accepts. See README.md.
package deploy
