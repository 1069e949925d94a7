"""The GPU platform's CrossGuard policies: one module per policy, each exporting ``POLICY``.

What they share is in modules named after each part: ``tokens`` (type tokens, where each kind keeps its pod
template), ``access`` (safe property access), ``resource`` (the resource being checked and the one message
shape), ``pods`` (the single pod-spec walker), ``outcome`` (findings, unknowns, notes between policies),
``config`` (config parsing) and ``guard`` (which keeps a bug from failing a preview). ``common`` re-exports
them for code outside the package.
"""
