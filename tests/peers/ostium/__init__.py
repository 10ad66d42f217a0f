"""A local Ostium for ostium-python-sdk, unmodified: anvil as the chain (chain id 42161, base
fee 0), mock contracts with the SDK's ABI (contracts/), a subgraph answering the SDK's GraphQL
queries, Ostium's price API, and a keeper that fills or cancels pending orders at the local
price and triggers stop losses and take profits resting on trades. See peer.py."""
