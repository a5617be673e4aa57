"""The ephemeral-runner (ci) scenarios: an empty builder imports the last pipeline's cache, builds after
a change, exports the cache again (issue 24). strategy: buildx flags per cache strategy (pure);
accounting: time split and bytes from rawjson and registry/directory blob sets (pure); engine: the
containerd-store engine and the registry side. One ci trial: harness/runner/ci.py."""
