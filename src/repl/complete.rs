//! Tab completion: REPL commands, item names, `std` guards, keywords, and
//! the `:property` keywords that fit where the cursor is.

use crate::syntax::lexer::{tokens, Token, KEYWORDS};

/// What a name in the session is, for completing the arguments of
/// commands that want one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Task,
    Action,
    Other,
}

/// The names completion offers, refreshed after every change.
#[derive(Debug, Clone, Default)]
pub struct Names {
    /// Items of the session.
    pub items: Vec<(String, NameKind)>,
    /// Every guard of the standard library.
    pub std_guards: Vec<String>,
}

use crate::syntax::properties as props;

/// The start of the word before `pos` and the candidates that complete
/// it, sorted, without duplicates. File names (after `:load`) are left
/// to the caller: the second value says so.
pub fn complete(line: &str, pos: usize, names: &Names) -> (usize, Vec<String>, bool) {
    let pos = floor_boundary(line, pos.min(line.len()));
    let before = &line[..pos];
    let start = before
        .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':' || c == '-'))
        .map_or(0, |i| {
            i + before[i..].chars().next().map_or(1, char::len_utf8)
        });
    let word = &before[start..];
    let head = before.trim_start();
    let command = head
        .starts_with(':')
        .then(|| head.split_whitespace().next().unwrap_or(""))
        .filter(|c| super::commands::is_command(c));
    let first_word = before[..start].trim().is_empty();
    if command == Some(":load") && !first_word {
        return (start, Vec::new(), true);
    }
    let mut out: Vec<String> = Vec::new();
    let lead = before[..start].trim_end();
    if lead.ends_with(":strategy") || lead.ends_with(":history") {
        let values: &[&str] = if lead.ends_with(":strategy") {
            &["repair", "resample", "best-of("]
        } else {
            &["keep", "fresh"]
        };
        out.extend(values.iter().map(|v| v.to_string()));
    } else if word.starts_with(':') {
        if first_word {
            out.extend(super::commands::COMMANDS.iter().map(|c| c.name.to_string()));
            out.extend(props::FILE.iter().map(|s| s.to_string()));
        } else {
            out.extend(properties_at(before).iter().map(|s| s.to_string()));
        }
    } else {
        let wants_task = matches!(command, Some(":graph" | ":bounds" | ":run"));
        for (name, kind) in &names.items {
            if !wants_task || matches!(kind, NameKind::Task | NameKind::Action) {
                out.push(name.clone());
            }
        }
        // in an interpolation: an attempt's context (action prompts)
        if before[..start].ends_with('{') {
            out.extend(["feedback", "previous", "history"].map(String::from));
        }
        if !wants_task {
            out.extend(names.std_guards.iter().cloned());
            out.extend(KEYWORDS.iter().map(|s| s.to_string()));
            out.extend(["true", "false", "all", "any", "majority", "par"].map(String::from));
        }
    }
    out.retain(|c| c.starts_with(word) && c != word);
    out.sort();
    out.dedup();
    (start, out, false)
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The properties that fit at the end of `before`: inside an action's
/// braces, a method's, a test's; after a subtask's call; after a task's
/// parameters; at the top level.
fn properties_at(before: &str) -> &'static [&'static str] {
    // the item keyword that opened each brace still open
    let mut stack: Vec<Option<Token>> = Vec::new();
    let mut last_item = None;
    let mut parens = 0usize;
    for (tok, _) in tokens(before) {
        match tok {
            Token::Action | Token::Task | Token::Method | Token::Test => last_item = Some(tok),
            Token::LBrace => stack.push(last_item.take()),
            Token::RBrace => {
                stack.pop();
            }
            Token::LParen => parens += 1,
            Token::RParen => parens = parens.saturating_sub(1),
            _ => {}
        }
    }
    match stack.last().copied().flatten() {
        Some(Token::Action) => props::ACTION,
        Some(Token::Method) if parens > 0 => props::SUBTASK,
        Some(Token::Method) => props::METHOD,
        Some(Token::Test) => props::TEST,
        Some(Token::Task) => &[],
        _ if last_item == Some(Token::Task) => props::TASK,
        _ => props::FILE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        Names {
            items: vec![
                ("prepare".into(), NameKind::Task),
                ("plan".into(), NameKind::Action),
                ("planner".into(), NameKind::Other),
            ],
            std_guards: vec!["python_syntax".into(), "pytest".into()],
        }
    }

    fn cands(line: &str) -> Vec<String> {
        complete(line, line.len(), &names()).1
    }

    #[test]
    fn names_commands_and_std_guards() {
        assert_eq!(cands(":sh"), [":show"]);
        assert_eq!(cands(":show pl"), ["plan", "planner"]);
        assert_eq!(cands(":run pl"), ["plan"]);
        assert_eq!(cands(":guard py"), ["pytest", "python_syntax"]);
        assert_eq!(cands("ac"), ["action"]);
        assert_eq!(complete(":show pl", 8, &names()).0, 6);
        assert!(complete(":load ex", 8, &names()).2);
    }

    #[test]
    fn properties_in_context() {
        assert!(cands("action a() -> T {\n  :ret").contains(&":retry".to_string()));
        assert!(cands("action a() -> T {\n  :str").contains(&":strategy".to_string()));
        assert_eq!(cands("  :strategy re"), ["repair", "resample"]);
        assert_eq!(cands("  :strategy "), ["best-of(", "repair", "resample"]);
        assert_eq!(cands("  :history "), ["fresh", "keep"]);
        assert!(cands("  :generate g \"{prev").contains(&"previous".to_string()));
        assert_eq!(cands("task t() { method m { :sub"), [":subtasks"]);
        assert_eq!(
            cands("task t() { method m { :subtasks (a: f(x) :esc"),
            [":escalate-to"]
        );
        assert_eq!(cands("task t() :max"), [":max-depth"]);
        assert_eq!(cands("test \"x\" { :w"), [":with"]);
        assert_eq!(cands("input x: Int\n:default-r"), [":default-retry"]);
    }
}
