"""The GPU platform's CrossGuard policies: one module per policy, each exporting ``POLICY``.

What they share is in modules named after each part: ``tokens`` (type tokens, where each kind keeps its pod
template), ``access`` (safe property access), ``resource`` (the resource being checked and the one message
shape), ``pods`` (the single pod-spec walker), ``outcome`` (findings, unknowns, notes between policies),
``config`` (config parsing), ``guard`` (which keeps a bug from failing a preview) and ``intake`` (which keeps
input the SDK cannot read from failing one). ``common`` re-exports the first seven for code outside the
package.
"""
