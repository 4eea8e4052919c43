/* CSV (proto/render_csv.c). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"
#include "render_fixture.h"
#include "tree.h"

Test(render_csv, golden)
{
    tp_tree *t = fx_rich_tree();
    char *s = fx_text_of(tp_render_csv, t);
    fx_golden("render_csv.csv", s);
    free(s);
    tp_tree_free(t);
}

Test(render_csv, quotes_and_defuses_formulas)
{
    tp_tree *t;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "=cmd", "f,g", "a\"b.py", 0), 0);
    cr_assert_eq(tp_tree_def_func(t, 1, "m", "g", "", 7), 0);
    fx_call(t, 0, 0, "x=\"1\",\ny=2");
    fx_call(t, 1, 1, "+SUM(A1)");
    fx_ret(t, 2, "-1");
    fx_call(t, 1, 3, "@x\xff");
    fx_unwind(t, 4, "=E", "a,b");
    fx_ret(t, 5, "\tx");
    cr_assert_eq(tp_tree_finish(t, 5 * US), 0);
    char *s = fx_text_of(tp_render_csv, t);
    cr_assert_str_eq(
        s, "module,function,args,return_value,elapsed_ms,depth,parent,exception,start,end,self_ms,"
           "file,lineno\r\n"
           "'=cmd,\"f,g\",\"x=\"\"1\"\",\ny=2\",'\tx,0.0050,0,,,0.000000,0.000005,0.0030,"
           "\"a\"\"b.py\",\r\n"
           "m,g,'+SUM(A1),'-1,0.0010,1,\"'=cmd.f,g\",,0.000001,0.000002,0.0010,,7\r\n"
           "m,g,'@x\xef\xbf\xbd,,0.0010,1,\"'=cmd.f,g\",\"'=E: a,b\",0.000003,0.000004,0.0010,,"
           "7\r\n");
    free(s);
    tp_tree_free(t);
}
