;;; guardflow-mode.el --- Major mode for Guardflow workflows -*- lexical-binding: t; -*-

;; Version: 0.1.0
;; Package-Requires: ((emacs "27.1"))
;; Keywords: languages
;; SPDX-License-Identifier: MIT OR Apache-2.0

;;; Commentary:

;; Highlighting, indentation and comment syntax for `.guardflow' files.
;; The keyword and property lists follow grammar/guardflow.pest; the
;; guardflow test suite checks that they agree.  For diagnostics, hover
;; and the rest, point eglot or lsp-mode at `guardflow lsp'.

;;; Code:

(defgroup guardflow nil
  "Major mode for Guardflow workflows."
  :group 'languages
  :prefix "guardflow-")

(defcustom guardflow-indent-offset 2
  "Columns per nesting level in Guardflow code."
  :type 'integer
  :safe #'integerp)

(defconst guardflow-keywords
  '("use" "std" "input" "type" "generator" "guard" "extern" "effect"
    "action" "task" "method" "resource" "test" "on" "after" "for" "in" "max")
  "Words with a fixed meaning in Guardflow.")

(defconst guardflow-properties
  '("default-max-tokens" "default-p" "default-retry" "default-timeout"
    "effect" "escalate-to" "expect" "feedback" "generate" "guard"
    "history" "idempotent" "max-depth" "max-escalations" "max-tokens" "on-fail"
    "ordering" "p" "parallel" "pre" "pre-guard" "result" "retry" "role" "run"
    "shared" "strategy" "subtasks" "timeout" "uses" "with")
  "Property names Guardflow knows, without their colon.")

(defconst guardflow-combinators '("all" "any" "majority" "par")
  "The guard combinators.")

(defconst guardflow--name "[[:alpha:]_][[:alnum:]_]*"
  "A Guardflow name.")

(defconst guardflow--property-start "\\(?:^\\|[^[:alnum:]_)]\\)"
  "What may come before the colon of a property.")

(defvar guardflow-mode-syntax-table
  (let ((table (make-syntax-table)))
    ;; `//' starts a comment that runs to the end of the line
    (modify-syntax-entry ?/ ". 12" table)
    (modify-syntax-entry ?\n ">" table)
    (modify-syntax-entry ?\" "\"" table)
    (modify-syntax-entry ?\\ "\\" table)
    (modify-syntax-entry ?_ "_" table)
    ;; `-' is part of property names: `:pre-guard' is one symbol
    (modify-syntax-entry ?- "_" table)
    (dolist (c '(?: ?. ?, ?\; ?| ?& ?! ?* ?= ?< ?>))
      (modify-syntax-entry c "." table))
    table)
  "Syntax table for `guardflow-mode'.")

(defun guardflow--code-literal-p (ppss)
  "Whether PPSS is inside a code literal, `python\"\"\"...\"\"\"'.
That is a triple-quoted string right after a name: its text is verbatim,
with no escapes and no interpolations."
  (and (eq (nth 3 ppss) t)
       (save-excursion
         (goto-char (nth 8 ppss))
         (memq (char-syntax (or (char-before) ?\s)) '(?w ?_)))))

(defun guardflow--triple-quote ()
  "Make the `\"\"\"' just matched open or close a string.
Its first quote becomes a string fence, the other two punctuation,
unless it is in a comment or a one-line string.  An escaped `\"\"\"'
closes nothing, but in a code literal, where `\\' is only text."
  (let* ((start (match-beginning 0))
         (ppss (save-excursion (syntax-ppss start))))
    (unless (or (nth 4 ppss)
                (and (nth 3 ppss) (not (eq (nth 3 ppss) t)))
                (and (eq (char-before start) ?\\)
                     (not (guardflow--code-literal-p ppss))))
      (put-text-property start (1+ start) 'syntax-table (string-to-syntax "|"))
      (put-text-property (1+ start) (+ start 3) 'syntax-table (string-to-syntax ".")))))

(defun guardflow--backslash ()
  "Make the `\\' just matched plain text when it is in a code literal."
  (let ((start (match-beginning 0)))
    (when (guardflow--code-literal-p (save-excursion (syntax-ppss start)))
      (put-text-property start (1+ start) 'syntax-table (string-to-syntax ".")))))

(defconst guardflow--syntax-propertize
  (syntax-propertize-rules
   ("\"\"\"" (0 (ignore (guardflow--triple-quote))))
   ("\\\\" (0 (ignore (guardflow--backslash)))))
  "Marks triple-quoted strings, and backslashes in code literals as text.")

(defun guardflow--syntactic-face (state)
  "The face of the string or comment described by STATE.
`///' (but not `////') starts a doc comment."
  (cond
   ((nth 3 state) font-lock-string-face)
   ((save-excursion
      (goto-char (nth 8 state))
      (and (looking-at "///") (not (looking-at "////"))))
    font-lock-doc-face)
   (t font-lock-comment-face)))

(defun guardflow--in-string-matcher (regexp)
  "A font-lock matcher for REGEXP inside strings only (not code literals)."
  (lambda (limit)
    (let (found)
      (while (and (not found) (re-search-forward regexp limit t))
        (let ((ppss (save-excursion (syntax-ppss (match-beginning 0)))))
          (when (and (nth 3 ppss) (not (guardflow--code-literal-p ppss)))
            (setq found t))))
      found)))

(defconst guardflow-font-lock-keywords
  `(;; inside strings: escapes and {name.path} interpolations
    (,(guardflow--in-string-matcher "\\\\.") 0 'font-lock-constant-face t)
    (,(guardflow--in-string-matcher
       (concat "{" guardflow--name "\\(?:\\." guardflow--name "\\)*}"))
     0 'font-lock-variable-name-face t)
    ;; a code literal's language: `python\"\"\"...\"\"\"'
    (,(concat "\\(" guardflow--name "\\)\"\"\"") 1 'font-lock-type-face)
    ;; words with a meaning after their property
    (,(concat guardflow--property-start "\\(:feedback\\)\\s-+\\(last\\|all\\)\\_>")
     (1 'font-lock-builtin-face) (2 'font-lock-constant-face))
    (,(concat guardflow--property-start "\\(:on-fail\\)\\s-+\\(cancel\\|continue\\)\\_>")
     (1 'font-lock-builtin-face) (2 'font-lock-constant-face))
    (,(concat guardflow--property-start "\\(:strategy\\)\\s-+\\(repair\\|resample\\|best-of\\)\\_>")
     (1 'font-lock-builtin-face) (2 'font-lock-constant-face))
    (,(concat guardflow--property-start "\\(:history\\)\\s-+\\(keep\\|fresh\\)\\_>")
     (1 'font-lock-builtin-face) (2 'font-lock-constant-face))
    (,(concat guardflow--property-start "\\(:expect\\)\\_>")
     (1 'font-lock-builtin-face)
     ("\\_<\\(?:\\(success\\|failure\\)\\|\\(calls\\|satisfies\\)\\)\\_>"
      (line-end-position) nil
      (1 'font-lock-constant-face nil t) (2 'font-lock-keyword-face nil t)))
    ;; properties; a name the grammar does not know is a warning
    (,(concat guardflow--property-start
              "\\(:" (regexp-opt guardflow-properties) "\\)\\_>")
     1 'font-lock-builtin-face)
    (,(concat guardflow--property-start "\\(:[[:alpha:]]\\(?:\\sw\\|\\s_\\)*\\)")
     1 'font-lock-warning-face)
    ;; names being defined
    (,(concat "\\_<\\(?:action\\|task\\|guard\\|generator\\|effect\\|method\\)\\_>\\s-+\\("
              guardflow--name "\\)")
     1 'font-lock-function-name-face)
    (,(concat "\\_<type\\_>\\s-+\\(" guardflow--name "\\)") 1 'font-lock-type-face)
    (,(concat "\\_<\\(?:input\\|resource\\)\\_>\\s-+\\(" guardflow--name "\\)")
     1 'font-lock-variable-name-face)
    ;; keywords and constants
    (,(concat "\\_<" (regexp-opt guardflow-keywords) "\\_>") . 'font-lock-keyword-face)
    ("\\_<\\(?:true\\|false\\)\\_>" . 'font-lock-constant-face)
    (,(concat "\\_<" (regexp-opt guardflow-combinators t) "\\s-*(") 1 'font-lock-builtin-face)
    ;; types, numbers, parameter names and subtask labels
    ("\\_<[[:upper:]][[:alnum:]_]*\\_>" . 'font-lock-type-face)
    ("\\_<[0-9][0-9_]*\\(?:\\.[0-9]+\\)?\\(?:ms\\|s\\|m\\|h\\)?\\_>" . 'font-lock-constant-face)
    (,(concat "\\_<\\(" guardflow--name "\\)\\_>:\\(?:\\s-\\|$\\)") 1 'font-lock-variable-name-face))
  "Highlighting for `guardflow-mode'.")

;; Indentation follows `guardflow fmt': the contents of a bracket one
;; level deeper than the line that opened it, its closer level with that
;; line; the first operand after a trailing `=' one level deeper; a line
;; starting with `&&' or `||' one level deeper than the expression's first
;; line (two after a `=').

(defun guardflow--operator-line-p ()
  "Whether the current line starts with `&&' or `||'."
  (save-excursion
    (back-to-indentation)
    (looking-at "&&\\|||")))

(defun guardflow--after-equals-p ()
  "Whether the code before the current line ends with `='."
  (save-excursion
    (beginning-of-line)
    (forward-comment (- (point)))
    (eq (char-before) ?=)))

(defun guardflow--expression-after-equals-p ()
  "Whether the expression the current line continues began after a `='.
Goes back over operator lines and deeper bracket groups to the
expression's first line."
  (save-excursion
    (let ((depth (car (syntax-ppss (line-beginning-position))))
          (result nil)
          (done nil))
      (while (and (not done) (zerop (forward-line -1)))
        (let* ((ppss (syntax-ppss (line-beginning-position)))
               (d (car ppss)))
          (cond
           ((nth 3 ppss))                       ; inside a string: go on
           ((save-excursion (back-to-indentation) (looking-at "$\\|//")))
           ((> d depth))                        ; inside a deeper group
           ((< d depth) (setq done t))
           ((guardflow--operator-line-p))       ; another operator line
           (t (setq result (guardflow--after-equals-p)
                    done t)))))
      result)))

(defun guardflow--indentation ()
  "The column the current line belongs at (nil inside a string)."
  (let ((ppss (save-excursion (syntax-ppss (line-beginning-position)))))
    (unless (nth 3 ppss)
      (let* ((closer (save-excursion (back-to-indentation) (looking-at "[])}]")))
             (base (if (nth 1 ppss)
                       (save-excursion
                         (goto-char (nth 1 ppss))
                         (+ (current-indentation)
                            (if closer 0 guardflow-indent-offset)))
                     0)))
        (cond
         (closer base)
         ((guardflow--operator-line-p)
          (+ base (* guardflow-indent-offset
                     (if (guardflow--expression-after-equals-p) 2 1))))
         ((guardflow--after-equals-p) (+ base guardflow-indent-offset))
         (t base))))))

(defun guardflow-indent-line ()
  "Indent the current line as `guardflow fmt' lays it out.
Lines inside a multi-line string are left as they are."
  (interactive)
  (let ((column (guardflow--indentation))
        (offset (- (current-column) (current-indentation))))
    (when column
      (indent-line-to (max column 0))
      (when (> offset 0)
        (forward-char offset)))))

;;;###autoload
(define-derived-mode guardflow-mode prog-mode "Guardflow"
  "Major mode for Guardflow workflow files."
  :syntax-table guardflow-mode-syntax-table
  (setq-local comment-start "// ")
  (setq-local comment-end "")
  (setq-local comment-start-skip "//+\\s-*")
  (setq-local syntax-propertize-function guardflow--syntax-propertize)
  (setq-local font-lock-defaults
              '(guardflow-font-lock-keywords
                nil nil nil nil
                (font-lock-syntactic-face-function . guardflow--syntactic-face)))
  (setq-local indent-line-function #'guardflow-indent-line)
  (setq-local indent-tabs-mode nil))

;;;###autoload
(add-to-list 'auto-mode-alist '("\\.guardflow\\'" . guardflow-mode))

(provide 'guardflow-mode)
;;; guardflow-mode.el ends here
