;;; guardflow-mode-test.el --- ERT tests for guardflow-mode -*- lexical-binding: t; -*-

;;; Commentary:

;; Run from the repository root:
;;   emacs -Q --batch -L editors/emacs -l editors/emacs/test/guardflow-mode-test.el \
;;     -f ert-run-tests-batch-and-exit

;;; Code:

(require 'ert)
(require 'guardflow-mode)

(defconst guardflow-test-root
  (expand-file-name "../../.." (file-name-directory (or load-file-name buffer-file-name)))
  "The repository root.")

(defun guardflow-test-file (name)
  "NAME relative to the repository root."
  (expand-file-name name guardflow-test-root))

(defmacro guardflow-test-with-file (file &rest body)
  "Run BODY in a `guardflow-mode' buffer holding FILE, fontified."
  (declare (indent 1))
  `(with-temp-buffer
     (insert-file-contents (guardflow-test-file ,file))
     (guardflow-mode)
     (font-lock-ensure)
     (goto-char (point-min))
     ,@body))

(defun guardflow-test-face-at (regexp)
  "The face at the start of the next match of REGEXP (or its group 1)."
  (unless (re-search-forward regexp nil t)
    (ert-fail (format "not found after line %d: %s" (line-number-at-pos) regexp)))
  (let* ((pos (or (match-beginning 1) (match-beginning 0)))
         (face (get-text-property pos 'face)))
    (if (listp face) (car face) face)))

(defun guardflow-test-expect-faces (expectations)
  "Check EXPECTATIONS, a list of (REGEXP FACE), in order through the buffer."
  (dolist (e expectations)
    (should (equal (list (car e) (guardflow-test-face-at (car e)))
                   (list (car e) (cadr e)))))
  t)

(ert-deftest guardflow-mode-is-chosen-for-guardflow-files ()
  (let ((buffer (find-file-noselect (guardflow-test-file "editors/test/sample.guardflow"))))
    (unwind-protect
        (with-current-buffer buffer
          (should (eq major-mode 'guardflow-mode)))
      (kill-buffer buffer))))

(ert-deftest guardflow-mode-faces-in-the-sample ()
  (guardflow-test-with-file "editors/test/sample.guardflow"
    (guardflow-test-expect-faces
     '(("^// \\(sample\\)" font-lock-comment-face)
       ("^//// \\(four\\)" font-lock-comment-face)
       ("\\_<use\\_>" font-lock-keyword-face)
       ("\\_<std\\_>" font-lock-keyword-face)
       (":default-retry" font-lock-builtin-face)
       ("2" font-lock-constant-face)
       ("^/// \\(Python\\)" font-lock-doc-face)
       ("\\_<type\\_>" font-lock-keyword-face)
       ("Source" font-lock-type-face)
       ("\\(steps\\):" font-lock-variable-name-face)
       ("Low" font-lock-type-face)
       ("\\_<input\\_>" font-lock-keyword-face)
       ("budget" font-lock-variable-name-face)
       ("90s" font-lock-constant-face)
       ("true" font-lock-constant-face)
       ("gpu" font-lock-variable-name-face)
       ("\\_<generator\\_>" font-lock-keyword-face)
       ("coder" font-lock-function-name-face)
       ("\"qwen" font-lock-string-face)
       ("lint" font-lock-function-name-face)
       ("\\_<on\\_>" font-lock-keyword-face)
       ("Code" font-lock-type-face)
       ("fixed" font-lock-function-name-face)
       ("\"pytest\"" font-lock-string-face)
       ("60s" font-lock-constant-face)
       ("^/// \\(Fixes\\)" font-lock-doc-face)
       ("\\_<action\\_>" font-lock-keyword-face)
       ("fix" font-lock-function-name-face)
       (":role" font-lock-builtin-face)
       ("You fix" font-lock-string-face)
       ("{code}" font-lock-variable-name-face)
       ("\\\\\"" font-lock-constant-face)
       ("care" font-lock-string-face)
       (":generate" font-lock-builtin-face)
       ("\"\"\"" font-lock-string-face)
       ("Fix this module" font-lock-string-face)
       ("{plan.steps}" font-lock-variable-name-face)
       ("{code}" font-lock-variable-name-face)
       ("\"quoted\"" font-lock-string-face)
       ("word and" font-lock-string-face)
       ("\\\\{" font-lock-constant-face)
       ("^    \"\"\"" font-lock-string-face)
       (":pre\\_>" font-lock-builtin-face)
       ("\\_<all\\_>" font-lock-builtin-face)
       ("\\_<any\\_>" font-lock-builtin-face)
       (":guard" font-lock-builtin-face)
       ("majority" font-lock-builtin-face)
       (":feedback" font-lock-builtin-face)
       ("last" font-lock-constant-face)
       (":max-tokens" font-lock-builtin-face)
       ("2_000" font-lock-constant-face)
       ("1\\.5m" font-lock-constant-face)
       (":p\\_>" font-lock-builtin-face)
       ("\\_<task\\_>" font-lock-keyword-face)
       ("repair" font-lock-function-name-face)
       ("\\_<method\\_>" font-lock-keyword-face)
       ("first" font-lock-function-name-face)
       (":subtasks" font-lock-builtin-face)
       ("\\_<\\(t\\):" font-lock-variable-name-face)
       (":escalate-to" font-lock-builtin-face)
       ("\\_<after\\_>" font-lock-keyword-face)
       (":max-escalations" font-lock-builtin-face)
       (":on-fail" font-lock-builtin-face)
       ("continue" font-lock-constant-face)
       ("\\_<test\\_>" font-lock-keyword-face)
       ("\"repair" font-lock-string-face)
       (":with" font-lock-builtin-face)
       (":expect" font-lock-builtin-face)
       ("success" font-lock-constant-face)
       ("calls" font-lock-keyword-face)
       ("satisfies" font-lock-keyword-face)))))

(ert-deftest guardflow-mode-unknown-properties-and-plain-names ()
  (with-temp-buffer
    (insert "action a() -> T {\n  :prefix 1\n  :pre-guard ok\n}\nsuccess calls\n")
    (guardflow-mode)
    (font-lock-ensure)
    (goto-char (point-min))
    (guardflow-test-expect-faces
     '((":prefix" font-lock-warning-face)
       (":pre-guard" font-lock-builtin-face)
       ("ok" nil)
       ("^success" nil)
       ("calls" nil)))))

(ert-deftest guardflow-mode-code-literals-are-verbatim ()
  ;; `python"""…"""': the language is a type; the text has no escapes
  ;; and no interpolations, so `\"""' closes it and `{y}' is only code
  (with-temp-buffer
    (insert "input s: Code<python> = python\"\"\"\n  x = \"{y}\" + \"\\n\" + \"\\\"\"\"\n"
            "input t: Text = \"{s} \\n\"\n")
    (guardflow-mode)
    (font-lock-ensure)
    (goto-char (point-min))
    (guardflow-test-expect-faces
     '(("\\(python\\)\"\"\"" font-lock-type-face)
       ("{y}" font-lock-string-face)
       ("\\\\n" font-lock-string-face)
       ("^input" font-lock-keyword-face)
       ("{s}" font-lock-variable-name-face)
       ("\\\\n" font-lock-constant-face)))))

(ert-deftest guardflow-mode-indents-every-example-as-written ()
  (dolist (dir '("examples" "tests/pass" "editors/test"))
    (dolist (file (seq-filter #'file-regular-p (directory-files (guardflow-test-file dir) t "\\.guardflow\\'")))
      (with-temp-buffer
        (insert-file-contents file)
        (guardflow-mode)
        (let ((before (buffer-string)))
          ;; flatten every line outside strings, then indent again
          (goto-char (point-min))
          (while (not (eobp))
            (unless (nth 3 (syntax-ppss (line-beginning-position)))
              (delete-horizontal-space))
            (forward-line 1))
          (indent-region (point-min) (point-max))
          (should (equal (list file (buffer-string)) (list file before))))))))

(ert-deftest guardflow-mode-comments ()
  (with-temp-buffer
    (guardflow-mode)
    (insert ":retry 2")
    (comment-region (point-min) (point-max))
    (should (equal (buffer-string) "// :retry 2"))
    (uncomment-region (point-min) (point-max))
    (should (equal (buffer-string) ":retry 2"))))

(ert-deftest guardflow-mode-indents-new-lines-in-blocks ()
  (with-temp-buffer
    (guardflow-mode)
    (insert "action a() -> T {\n:retry 2\n}\nguard g =\nok\n")
    (indent-region (point-min) (point-max))
    (should (equal (buffer-string)
                   "action a() -> T {\n  :retry 2\n}\nguard g =\n  ok\n"))))

(provide 'guardflow-mode-test)
;;; guardflow-mode-test.el ends here
