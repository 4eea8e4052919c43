/* Error codes and their messages (proto/tp_err.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "tp_err.h"

Test(err, every_tracepatch_code_has_its_own_message_and_name)
{
    for (int code = TP_ERR_BASE; code >= TP_ERR_LAST; code--) {
        const char *msg = tp_strerror(code), *name = tp_errname(code);
        cr_assert_str_neq(msg, "unknown error", "code %d", code);
        cr_assert_str_neq(name, "ERROR", "code %d", code);
        for (int other = TP_ERR_BASE; other > code; other--) {
            cr_assert_str_neq(msg, tp_strerror(other), "codes %d and %d", code, other);
            cr_assert_str_neq(name, tp_errname(other), "codes %d and %d", code, other);
        }
    }
}

Test(err, names_match_the_wire_spelling)
{
    cr_assert_str_eq(tp_errname(TP_ERR_TRUNCATED), "TRUNCATED");
    cr_assert_str_eq(tp_errname(TP_ERR_VERSION), "VERSION");
    cr_assert_str_eq(tp_errname(TP_ERR_PERM), "PERM");
    cr_assert_str_eq(tp_errname(-ENOMEM), "ENOMEM");
    cr_assert_str_eq(tp_errname(0), "OK");
}

Test(err, negated_errno_reads_as_strerror)
{
    cr_assert_str_eq(tp_strerror(-ENOENT), strerror(ENOENT));
    cr_assert_str_eq(tp_strerror(-EACCES), strerror(EACCES));
}

Test(err, success_and_unknown_codes_have_messages)
{
    cr_assert_str_eq(tp_strerror(0), "success");
    cr_assert_str_eq(tp_strerror(TP_ERR_LAST - 1), "unknown error");
    cr_assert_str_eq(tp_strerror(1), "unknown error");
    cr_assert_str_eq(tp_errname(TP_ERR_LAST - 1), "ERROR");
}

Test(err, set_writes_the_message_and_returns_the_code)
{
    char msg[16] = "untouched";
    cr_assert_eq(tp_err_set(msg, sizeof(msg), TP_ERR_JSON, "line %d: %s", 3, "bad token here"),
                 TP_ERR_JSON);
    cr_assert_str_eq(msg, "line 3: bad tok"); /* cut to the buffer, NUL-terminated */
    cr_assert_eq(tp_err_set(NULL, 0, -EINVAL, "ignored"), -EINVAL);
    char keep[4] = "abc";
    cr_assert_eq(tp_err_set(keep, 0, -EIO, "x"), -EIO);
    cr_assert_str_eq(keep, "abc");
}
