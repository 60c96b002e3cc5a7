package proto

// SourcePluginKey is the name under which a source plugin serves its
// SourcePlugin service in go-plugin's plugin set. Source plugins use the
// same handshake (Handshake, ProtocolVersion, magic cookie) and mutual TLS
// as action plugins.
const SourcePluginKey = "source"
