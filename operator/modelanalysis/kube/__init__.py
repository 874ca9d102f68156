"""The Kubernetes side: the ModelAnalysis resource, the objects built from it, and the kopf handlers."""
