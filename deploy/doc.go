// Package deploy holds no code: it is the module of the deployment checks.
// Its tests build the Kubernetes manifests in this directory with
// kustomize and decode them strictly into the Kubernetes and Prometheus
// Operator types, load ../docker-compose.yml with compose-go, parse the
// alert rules with Prometheus' rulefmt, and compare every metric the
// dashboard and the rules use with what the real binary exports. It is a
// module of its own so that these heavy libraries stay out of the service's
// go.mod.
package deploy
