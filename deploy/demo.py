"""A small order-processing service, traced by deploy/quickstart.sh.

It has what real code has: a recursive helper, an exception that is caught
and one that propagates, a generator, and async I/O with gather.
"""

import asyncio

from tracepatch import trace

PRICES = {"apple": 0.5, "pear": 0.75, "fig": 2.0}


def parse_line(line):
    name, qty = line.split(":")
    return name.strip(), int(qty)


def price_of(name):
    return PRICES[name]


def line_total(line):
    name, qty = parse_line(line)
    try:
        return qty * price_of(name)
    except KeyError:
        return 0.0


def bulk_discount(total, tiers):
    # Recursive on purpose: each tier takes its cut of what is left.
    if not tiers:
        return total
    return bulk_discount(total * (1 - tiers[0]), tiers[1:])


def lines(order):
    for raw in order.split(","):
        yield raw


async def fetch_stock(name):
    await asyncio.sleep(0.001)
    return {"apple": 10, "pear": 0, "fig": 3}.get(name, 0)


async def check_stock(names):
    counts = await asyncio.gather(*(fetch_stock(n) for n in names))
    return dict(zip(names, counts))


def validate(stock):
    empty = [n for n, c in stock.items() if c == 0]
    if empty:
        raise ValueError(f"out of stock: {', '.join(empty)}")
    return True


async def handle_order(order):
    total = sum(line_total(raw) for raw in lines(order))
    total = bulk_discount(total, [0.05, 0.02, 0.01])
    stock = await check_stock([parse_line(raw)[0] for raw in lines(order)])
    try:
        validate(stock)
    except ValueError:
        pass
    return round(total, 2)


async def main():
    # The event loop's own machinery is noise here: leave asyncio out.
    async with trace(label="quickstart-demo", ignore_modules=["asyncio", "_weakrefset"]) as t:
        total = await handle_order("apple: 4, pear: 2, fig: 1, kiwi: 3")
    print(t.tree())
    print(f"order total: {total}")
    return t


if __name__ == "__main__":
    asyncio.run(main())
