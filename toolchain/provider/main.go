// The pulumi-resource-kubernetes provider plugin, built from the published provider module.
//
// Upstream's own main package embeds schema-embed.json and terraform-mapping-embed.json, which its
// Makefile generates and the module does not ship; this main is the same three lines over files that
// tools/toolchain.py generates beside it from the module's schema.json and terraform-mapping.json.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var pulumiSchema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve("kubernetes", version.Version, pulumiSchema, terraformMapping)
}
