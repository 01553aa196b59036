//! docs/client-kits.md shows the kits' examples as code blocks; each block must be its
//! example file byte for byte (the kits' tests run those files, so the page shows code
//! that runs).

use std::path::Path;

/// Every example the page must show.
const EXAMPLES: [&str; 4] = [
    "clients/rust/examples/alloy_send.rs",
    "clients/rust/examples/solana_transfer.rs",
    "clients/ts/examples/viem_send.ts",
    "clients/ts/examples/solana_transfer.ts",
];

/// `(path, code)` of each block preceded by `<!-- snippet: PATH -->`.
fn snippets(doc: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let Some(path) = line
            .strip_prefix("<!-- snippet: ")
            .and_then(|l| l.strip_suffix(" -->"))
        else {
            continue;
        };
        let fence = lines.next().unwrap_or_default();
        assert!(
            fence.starts_with("```"),
            "snippet {path}: a code block must follow its comment, found {fence:?}"
        );
        let mut code = String::new();
        for l in lines.by_ref() {
            if l == "```" {
                break;
            }
            code.push_str(l);
            code.push('\n');
        }
        out.push((path.to_owned(), code));
    }
    out
}

#[test]
fn client_kits_page_shows_the_examples_verbatim() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let doc = std::fs::read_to_string(root.join("docs/client-kits.md")).unwrap();
    let found = snippets(&doc);
    let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, EXAMPLES, "the page's snippets, in order");
    for (path, code) in &found {
        let file = std::fs::read_to_string(root.join(path)).unwrap();
        assert!(
            *code == file,
            "docs/client-kits.md's block for {path} differs from the file: paste the file again"
        );
    }
}

#[test]
fn readme_links_the_page() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.contains("(docs/client-kits.md)"),
        "README links docs/client-kits.md"
    );
}
