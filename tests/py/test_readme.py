"""The examples of tracepatch 1.0.0's README, run as the README shows them
(as scripts, so functions live in __main__), with their exact output."""

import textwrap
from pathlib import Path

from conftest import norm, qualname, run_python


def run_script(source: str):
    Path("example.py").write_text(textwrap.dedent(source))
    r = run_python(["example.py"])
    assert r.returncode == 0, r.stderr
    return r


def test_quick_start():
    r = run_script("""\
        from tracepatch import trace

        def load_user(uid):
            return {"id": uid, "name": "Alice"}

        def validate(user):
            return user["name"] != ""

        def handle_request(uid):
            user = load_user(uid)
            validate(user)
            return user

        with trace(label="debug-request") as t:
            handle_request(42)

        print(t.tree())
        """)
    # As in the README, except: the validate() argument is shown in full (it
    # fits in max_repr=120), and "Most called" breaks the three-way tie by
    # name, so it names handle_request.
    assert norm(r.stdout) == textwrap.dedent("""\
        Trace: debug-request
        ────────────────────────────────────────────────────────────────────────
        Recorded:     3 calls across 1 modules | Duration: T
        Max depth:    1 levels | Unique functions: 3
        Slowest:      __main__.handle_request [T] | Most called: __main__.handle_request [×1]
        ────────────────────────────────────────────────────────────────────────

        └── __main__.handle_request(uid=42) -> {'id': 42, 'name': 'Alice'}  [T]
            ├── __main__.load_user(uid=42) -> {'id': 42, 'name': 'Alice'}  [T]
            └── __main__.validate(user={'id': 42, 'name': 'Alice'}) -> True  [T]""")
    saved = list(Path(".tracepatch/traces").glob("debug-request_*.json"))
    assert len(saved) == 1


def test_context_manager_sync():
    r = run_script("""\
        from tracepatch import trace

        def fetch_user(user_id):
            return {"id": user_id, "name": "Alice"}

        def handle_request():
            user = fetch_user(42)
            return user

        with trace() as t:
            handle_request()

        print(t.tree(header=False))
        """)
    assert norm(r.stdout) == (
        "└── __main__.handle_request() -> {'id': 42, 'name': 'Alice'}  [T]\n"
        "    └── __main__.fetch_user(user_id=42) -> {'id': 42, 'name': 'Alice'}  [T]")


def test_context_manager_async():
    r = run_script("""\
        import asyncio
        from tracepatch import trace

        async def fetch_user(user_id):
            return {"id": user_id, "name": "Alice"}

        async def handle_request():
            user = await fetch_user(42)
            return user

        async def main():
            async with trace() as t:
                await handle_request()
            print(t.tree(header=False))

        asyncio.run(main())
        """)
    assert norm(r.stdout) == (
        "└── __main__.handle_request() -> {'id': 42, 'name': 'Alice'}  [T]\n"
        "    └── __main__.fetch_user(user_id=42) -> {'id': 42, 'name': 'Alice'}  [T]")


def test_decorator_usage_and_static_method_note():
    r = run_script("""\
        import asyncio
        from tracepatch import trace

        def process_data():
            return 1

        async def fetch_data():
            return 2

        def process_item(i):
            return i * i

        @trace(label="api-handler")
        def handle_api_request():
            process_data()
            return {"status": "OK"}

        @trace(label="async-task")
        async def background_job():
            await fetch_data()
            return "done"

        @trace()
        def data_generator():
            for i in range(3):
                yield process_item(i)

        class MyClass:
            @staticmethod
            @trace()
            def my_static_method():
                pass

        print(handle_api_request())
        print(asyncio.run(background_job()))
        print(list(data_generator()))
        MyClass.my_static_method()
        for f in (handle_api_request, background_job, data_generator,
                  MyClass.my_static_method):
            print(f.last_trace.tree(header=False))
        """)
    assert norm(r.stdout) == textwrap.dedent(f"""\
        {{'status': 'OK'}}
        done
        [0, 1, 4]
        └── __main__.handle_api_request() -> {{'status': 'OK'}}  [T]
            └── __main__.process_data() -> 1  [T]
        └── __main__.background_job() -> 'done'  [T]
            └── __main__.fetch_data() -> 2  [T]
        └── __main__.data_generator() -> None  [T active, T span, resumed 3×]
            └── __main__.process_item(...)  [×3]  [T total, avg T, min T, max T]
        └── __main__.{qualname("MyClass.my_static_method")}() -> None  [T]""")
    labels = sorted(p.name.split("_2")[0] for p in Path(".tracepatch/traces").glob("*.json"))
    assert labels == ["api-handler", "async-task", "trace", "trace"]
