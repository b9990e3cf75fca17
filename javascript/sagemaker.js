// sd-webui-sagemaker: only what the Python side (gradio) cannot express. A1111 loads every
// javascript/*.js of an extension into its page; `python -m aws_extension ui` does the same.
//
// 1. autocomplete hints by elem_id, so a password manager fills the sign-in form and never
//    puts the admin's saved password into a "create user" or "new password" field;
// 2. a leave-page prompt while an action of the tab runs: closing the page would cancel an
//    upload or a role/user change in flight.
(function () {
    'use strict';

    var TAB = '#sagemaker_interface';
    // gradio puts elem_id on a component's wrapper; the hint goes on the input inside.
    var HINTS = [
        [['#sagemaker_username'], 'username'],
        [['#sagemaker_password', '[id$="_password_current"]'], 'current-password'],
        // The API token, and the name of a user the admin creates (not the admin's own).
        [['#sagemaker_api_token', '#sagemaker_user_name'], 'off'],
        [
            [
                '#sagemaker_user_password',
                '[id*="new_password"]',
                '[id$="_password_new"]',
                '[id$="_password_repeat"]',
            ],
            'new-password',
        ],
    ].map(function (hint) {
        var fields = hint[0].map(function (wrapper) {
            return wrapper + ' input, ' + wrapper + ' textarea';
        });
        return { selector: fields.join(', '), value: hint[1] };
    });
    // What gradio (3.41 and 4.x) draws in an output while its event is queued or running.
    var PENDING = '.progress-text, .eta-bar, .pending';

    function appRoot() {
        if (typeof gradioApp === 'function') {
            return gradioApp();
        }
        var app = document.querySelector('gradio-app');
        return (app && app.shadowRoot) || document;
    }

    function tab() {
        return appRoot().querySelector(TAB);
    }

    function applyHints(root) {
        HINTS.forEach(function (hint) {
            root.querySelectorAll(hint.selector).forEach(function (field) {
                if (field.getAttribute('autocomplete') !== hint.value) {
                    field.setAttribute('autocomplete', hint.value);
                }
            });
        });
    }

    // Hint now, and again whenever gradio re-renders a part of the tab (attribute changes,
    // such as our own, are not observed).
    function watch(root) {
        applyHints(root);
        new MutationObserver(function () {
            applyHints(root);
        }).observe(root, { childList: true, subtree: true });
    }

    function start() {
        var root = tab();
        if (root) {
            watch(root);
            return;
        }
        // Outside A1111 gradio draws the page after the document has loaded: wait for the tab.
        var page = appRoot();
        var waiting = new MutationObserver(function () {
            var found = tab();
            if (found) {
                waiting.disconnect();
                watch(found);
            }
        });
        waiting.observe(page === document ? document.documentElement : page, {
            childList: true,
            subtree: true,
        });
    }

    window.addEventListener('beforeunload', function (event) {
        var root = tab();
        if (!root || !root.querySelector(PENDING)) {
            return undefined;
        }
        var message = 'An Amazon SageMaker action is still running; leaving stops it.';
        event.preventDefault();
        event.returnValue = message; // browsers before the standard need it set
        return message;
    });

    if (typeof onUiLoaded === 'function') {
        onUiLoaded(start);
    } else if (document.readyState === 'loading') {
        document.addEventListener('DOMContentLoaded', start);
    } else {
        start();
    }
})();
