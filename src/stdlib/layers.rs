//! The `layers(lang, module, rules)` guard: architecture layer rules
//! over imports. `rules` maps each layer (a module prefix such as
//! `app.domain`) to the layers it may import; the artifact is the code of
//! `module`. Each import (from the tree-sitter tree, `syntax::imports`)
//! belongs to the layer with the longest matching prefix; an import in no
//! layer (the standard library, third-party packages) is not governed. A
//! module may always import its own layer. Python relative imports
//! (`from ..api import x`) are resolved against `module` first.

use super::syntax::{canonical, imports};
use crate::runtime::Verdict;

/// How many offending imports feedback lists.
const MAX_REPORTED: usize = 5;

fn separator(lang: &str) -> &'static str {
    match canonical(lang) {
        Some("rust") => "::",
        Some("javascript" | "typescript") => "/",
        _ => ".",
    }
}

/// `module` is `layer` or lies under it.
fn under(module: &str, layer: &str, sep: &str) -> bool {
    module == layer
        || module
            .strip_prefix(layer)
            .is_some_and(|rest| rest.starts_with(sep))
}

/// The layer of `module`: the longest key of `rules` it lies under.
fn layer_of<'r>(module: &str, rules: &'r [(String, Vec<String>)], sep: &str) -> Option<&'r str> {
    rules
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !k.is_empty() && under(module, k, sep))
        .max_by_key(|k| k.len())
}

/// A Python relative import (`.x`, `..y.z`, `.`) made absolute from the
/// importing `module` (whose package is all but its last part); `None`
/// when it climbs above the top.
fn absolute(import: &str, module: &str) -> Option<String> {
    let dots = import.chars().take_while(|c| *c == '.').count();
    if dots == 0 {
        return Some(import.to_string());
    }
    let mut package: Vec<&str> = module.split('.').collect();
    package.pop();
    for _ in 1..dots {
        package.pop()?;
    }
    let rest = &import[dots..];
    if !rest.is_empty() {
        package.push(rest);
    }
    (!package.is_empty()).then(|| package.join("."))
}

/// The `rules` argument: each layer and the layers it may import, from
/// a `Map<[Text]>` value.
pub fn rules_of(value: Option<&crate::runtime::Value>) -> Vec<(String, Vec<String>)> {
    value
        .and_then(|v| v.as_object())
        .map(|map| {
            map.iter()
                .map(|(k, v)| {
                    let allowed = v
                        .as_array()
                        .map(|items| {
                            items
                                .iter()
                                .filter_map(|i| i.as_str().map(|s| s.trim().to_string()))
                                .collect()
                        })
                        .unwrap_or_default();
                    (k.trim().to_string(), allowed)
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn layers(lang: &str, module: &str, source: &str, rules: &[(String, Vec<String>)]) -> Verdict {
    let module = module.trim();
    let sep = separator(lang);
    let Some(own) = layer_of(module, rules, sep) else {
        return Verdict::fatal(format!(
            "`{module}` is in no layer of the rules (layers: {})",
            rules
                .iter()
                .map(|(k, _)| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    let may: &[String] = rules
        .iter()
        .find(|(k, _)| k == own)
        .map_or(&[], |(_, v)| v.as_slice());
    let found = match imports(lang, source) {
        Ok(f) => f,
        Err(e) => return Verdict::fatal(e),
    };
    let python = canonical(lang) == Some("python");
    let mut problems = Vec::new();
    for import in &found {
        let target = if python {
            match absolute(&import.module, module) {
                Some(t) => t,
                None => {
                    problems.push(format!(
                        "line {}: `{}` climbs above the top package from `{module}`",
                        import.line, import.statement
                    ));
                    continue;
                }
            }
        } else {
            import.module.clone()
        };
        let Some(layer) = layer_of(&target, rules, sep) else {
            continue;
        };
        if layer == own || may.iter().any(|m| m == layer) {
            continue;
        }
        problems.push(format!(
            "line {}: `{}` imports `{target}` (layer `{layer}`), which layer `{own}` may not \
             import ({})",
            import.line,
            import.statement,
            if may.is_empty() {
                "it may import no other layer".to_string()
            } else {
                format!(
                    "it may import {}",
                    may.iter()
                        .map(|m| format!("`{m}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        ));
    }
    if problems.is_empty() {
        return Verdict::Pass;
    }
    let mut feedback = match problems.len() {
        1 => format!("`{module}` breaks a layer rule:"),
        n => format!("`{module}` breaks layer rules with {n} imports:"),
    };
    for p in problems.iter().take(MAX_REPORTED) {
        feedback.push_str("\n- ");
        feedback.push_str(p);
    }
    if problems.len() > MAX_REPORTED {
        feedback.push_str(&format!("\n(and {} more)", problems.len() - MAX_REPORTED));
    }
    Verdict::fail(feedback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_imports_resolve_against_the_module() {
        assert_eq!(
            absolute(".models", "app.domain.service").as_deref(),
            Some("app.domain.models")
        );
        assert_eq!(
            absolute("..api", "app.domain.service").as_deref(),
            Some("app.api")
        );
        assert_eq!(
            absolute(".", "app.domain.service").as_deref(),
            Some("app.domain")
        );
        assert_eq!(absolute("....x", "app.domain.service"), None);
        assert_eq!(absolute("os", "app.x").as_deref(), Some("os"));
    }

    #[test]
    fn the_longest_layer_wins() {
        let rules = vec![
            ("app".to_string(), vec![]),
            ("app.domain".to_string(), vec![]),
        ];
        assert_eq!(layer_of("app.domain.x", &rules, "."), Some("app.domain"));
        assert_eq!(layer_of("app.api", &rules, "."), Some("app"));
        assert_eq!(layer_of("apple", &rules, "."), None);
    }
}
