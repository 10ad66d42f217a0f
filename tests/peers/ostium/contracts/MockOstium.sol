// SPDX-License-Identifier: MIT
// Stand-ins for Ostium's contracts with the ABI of ostium-python-sdk 3.3.1 (trading, trading
// storage, registry, callbacks) and a USDC. Not Ostium's code: just enough of its behaviour
// for Maxxit's tests: two-step market orders (a price request, then a keeper's fill or
// cancel), delegation through delegatedAction, the on-chain limits with Ostium's custom errors
// (WrongLeverage, BelowMinLevPos, ...), an opening fee, rollover per block (accrued as the SDK
// reads it from the subgraph), partial closes (closePercentage), TP/SL on the trade, and the
// market-timeout calls. Compiled by compile.mjs (npm solc 0.8.30) into artifacts.json.
pragma solidity 0.8.30;

contract MockUSDC {
    string public name = "USD Coin";
    string public symbol = "USDC";
    uint8 public decimals = 6;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    // the test faucet: anyone may mint on the local chain
    function mint(address to, uint256 value) external returns (bool) {
        balanceOf[to] += value;
        emit Transfer(address(0), to, value);
        return true;
    }

    function approve(address spender, uint256 value) external returns (bool) {
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    function transfer(address to, uint256 value) external returns (bool) {
        _move(msg.sender, to, value);
        return true;
    }

    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        require(allowed >= value, "ERC20: insufficient allowance");
        allowance[from][msg.sender] = allowed - value;
        _move(from, to, value);
        return true;
    }

    function _move(address from, address to, uint256 value) internal {
        require(balanceOf[from] >= value, "ERC20: transfer amount exceeds balance");
        balanceOf[from] -= value;
        balanceOf[to] += value;
        emit Transfer(from, to, value);
    }
}

struct Trade {
    uint256 collateral; // USDC, 1e6
    uint192 openPrice; // 1e18
    uint192 tp;
    uint192 sl;
    address trader;
    uint32 leverage; // x100
    uint16 pairIndex;
    uint8 index;
    bool buy;
    bool isDayTrade;
}

struct BuilderFee {
    address builder;
    uint32 builderFee;
}

struct PendingMarketOrder {
    uint256 block;
    uint192 wantedPrice;
    uint32 slippageP;
    Trade trade;
    uint16 percentage;
}

contract MockCallbacks {
    address public trading;

    event MarketOpenExecuted(uint256 indexed orderId, Trade t, uint256 priceImpactP, uint256 tradeNotional);
    event MarketOpenCanceled(uint256 indexed orderId, address indexed trader, uint256 indexed pairIndex, uint8 cancelReason);
    event MarketCloseExecutedV2(uint256 indexed orderId, uint256 indexed tradeId, uint256 price, uint256 priceImpactP, int256 percentProfit, uint256 usdcSentToTrader, uint256 percentageClosed);
    event MarketCloseCanceled(uint256 indexed orderId, uint256 indexed tradeId, address indexed trader, uint256 pairIndex, uint256 index, uint8 cancelReason);
    event LimitCloseExecuted(uint256 indexed orderId, uint256 indexed tradeId, uint8 orderType, uint256 price, uint256 priceImpactP, int256 percentProfit, uint256 usdcSentToTrader);
    event FeesChargedV2(uint256 indexed orderId, uint256 indexed tradeId, address indexed trader, int256 rolloverFees, int256 fundingFees);
    event VaultOpeningFeeCharged(uint256 indexed tradeId, address indexed trader, uint256 amount);

    constructor() {
        trading = msg.sender;
    }

    modifier onlyTrading() {
        require(msg.sender == trading, "not trading");
        _;
    }

    function opened(uint256 orderId, uint256 tradeId, Trade calldata t, uint256 notional, uint256 fee) external onlyTrading {
        emit VaultOpeningFeeCharged(tradeId, t.trader, fee);
        emit MarketOpenExecuted(orderId, t, 0, notional);
    }

    function openCanceled(uint256 orderId, address trader, uint256 pairIndex, uint8 reason) external onlyTrading {
        emit MarketOpenCanceled(orderId, trader, pairIndex, reason);
    }

    function closed(uint256 orderId, uint256 tradeId, address trader, uint8 orderType, uint256 price, int256 percentProfit, uint256 sent, int256 rollover, uint16 percentage) external onlyTrading {
        emit FeesChargedV2(orderId, tradeId, trader, rollover, 0);
        if (orderType == 255) {
            emit MarketCloseExecutedV2(orderId, tradeId, price, 0, percentProfit, sent, percentage);
        } else {
            emit LimitCloseExecuted(orderId, tradeId, orderType, price, 0, percentProfit, sent);
        }
    }

    function closeCanceled(uint256 orderId, uint256 tradeId, address trader, uint256 pairIndex, uint256 index, uint8 reason) external onlyTrading {
        emit MarketCloseCanceled(orderId, tradeId, trader, pairIndex, index, reason);
    }
}

contract MockOstium {
    error WrongLeverage(uint32 leverage);
    error BelowMinLevPos();
    error PairNotListed(uint16 index);
    error NoDelegate(address a);
    error NotDelegate(address trader, address caller);
    error DelegateForbidden();
    error DelegateReentrant();
    error NoTradeFound(address trader, uint16 pairIndex, uint8 index);
    error AlreadyMarketClosed(address trader, uint16 pairIndex, uint8 index);
    error NotYourOrder(uint256 orderId, address trader);
    error WaitTimeout(uint256 orderId);
    error NoTradeToTimeoutFound(uint256 orderId);
    error WrongParams();
    error WrongSL();
    error WrongTP();
    error NotTradesUpKeep(address a);
    error MaxTradesPerPairReached(address trader, uint16 pairIndex);

    event PriceRequestedV2(uint256 indexed orderId, uint8 orderType, bytes32 feedId, uint256 timestamp);
    event MarketOpenOrderInitiated(uint256 indexed orderId, address indexed trader, uint16 indexed pairIndex);
    event MarketCloseOrderInitiatedV2(uint256 indexed orderId, uint256 indexed tradeId, address indexed trader, uint16 pairIndex, uint16 closePercentage);
    event MarketOpenTimeoutExecutedV2(uint256 indexed orderId, PendingMarketOrder order);
    event MarketCloseTimeoutExecutedV2(uint256 indexed orderId, uint256 indexed tradeId, PendingMarketOrder order);
    event DelegateAdded(address indexed delegator, address indexed delegate);
    event DelegateRemoved(address indexed delegator, address indexed delegate);
    event TpUpdated(uint256 indexed tradeId, address indexed trader, uint16 indexed pairIndex, uint8 index, uint192 newTp);
    event SlUpdated(uint256 indexed tradeId, address indexed trader, uint16 indexed pairIndex, uint8 index, uint192 newSl);

    struct Pair {
        bool listed;
        uint32 minLeverage; // x100
        uint32 maxLeverage; // x100
        uint256 minLevPos; // USD, 1e6
        uint256 openFeeP; // percent, 1e6 (40000 = 0.04 %)
        uint256 rolloverFeePerBlock; // fraction of the notional per block, 1e18
    }

    struct OpenTrade {
        Trade t;
        uint256 notional; // asset units, 1e18
        uint256 openBlock;
        bool active;
        bool closing;
    }

    struct Pending {
        PendingMarketOrder order;
        uint256 tradeId; // 0 for an open
        bool active;
    }

    MockUSDC public usdc;
    MockCallbacks public callbacks;
    address public gov;
    uint16 public marketOrdersTimeout = 3; // blocks
    uint256 public orderCounter;
    uint256 public tradeCounter;
    mapping(uint16 => Pair) public pairs;
    mapping(uint256 => Pending) internal pending;
    mapping(uint256 => OpenTrade) internal trades;
    mapping(address => mapping(uint16 => mapping(uint8 => uint256))) public tradeIds;
    mapping(address => address) public delegations;
    address private delegatedTrader;

    constructor(MockUSDC _usdc) {
        usdc = _usdc;
        gov = msg.sender;
        callbacks = new MockCallbacks();
    }

    modifier onlyGov() {
        if (msg.sender != gov) revert NotTradesUpKeep(msg.sender);
        _;
    }

    // -- registry: the trading contract is its own registry here --------------------------

    function registry() external view returns (address) {
        return address(this);
    }

    function getContractAddress(bytes32 name) external view returns (address) {
        if (name == bytes32("callbacks")) return address(callbacks);
        if (name == bytes32("tradingStorage")) return address(this);
        return address(0);
    }

    function setPair(uint16 index, uint32 minLev, uint32 maxLev, uint256 minLevPos, uint256 openFeeP, uint256 rolloverPerBlock) external onlyGov {
        pairs[index] = Pair(true, minLev, maxLev, minLevPos, openFeeP, rolloverPerBlock);
    }

    // -- delegation (Ostium's Delegatable) ---------------------------------------------------

    function _msgSender() public view returns (address) {
        return delegatedTrader != address(0) ? delegatedTrader : msg.sender;
    }

    function setDelegate(address delegate) external {
        if (delegatedTrader != address(0)) revert DelegateForbidden();
        delegations[msg.sender] = delegate;
        emit DelegateAdded(msg.sender, delegate);
    }

    function removeDelegate() external {
        if (delegatedTrader != address(0)) revert DelegateForbidden();
        address old = delegations[msg.sender];
        delete delegations[msg.sender];
        emit DelegateRemoved(msg.sender, old);
    }

    function delegatedAction(address trader, bytes calldata call_data) external returns (bytes memory) {
        address delegate = delegations[trader];
        if (delegate == address(0)) revert NoDelegate(trader);
        if (delegate != msg.sender) revert NotDelegate(trader, msg.sender);
        if (delegatedTrader != address(0)) revert DelegateReentrant();
        delegatedTrader = trader;
        (bool ok, bytes memory answer) = address(this).delegatecall(call_data);
        delegatedTrader = address(0);
        if (!ok) {
            assembly {
                revert(add(answer, 32), mload(answer))
            }
        }
        return answer;
    }

    // -- trading -----------------------------------------------------------------------------

    function openTrade(Trade memory t, BuilderFee calldata, uint8 orderType, uint256 slippageP) external {
        address trader = _msgSender();
        Pair memory p = pairs[t.pairIndex];
        if (!p.listed) revert PairNotListed(t.pairIndex);
        if (orderType != 0) revert WrongParams();
        if (t.leverage < p.minLeverage || t.leverage > p.maxLeverage) revert WrongLeverage(t.leverage);
        if (t.collateral * t.leverage / 100 < p.minLevPos) revert BelowMinLevPos();
        if (t.tp != 0 && (t.buy ? t.tp <= t.openPrice : t.tp >= t.openPrice)) revert WrongTP();
        if (t.sl != 0 && (t.buy ? t.sl >= t.openPrice : t.sl <= t.openPrice)) revert WrongSL();
        uint8 index = 0;
        while (tradeIds[trader][t.pairIndex][index] != 0) {
            index++;
            if (index >= 3) revert MaxTradesPerPairReached(trader, t.pairIndex);
        }
        require(usdc.transferFrom(trader, address(this), t.collateral));
        t.trader = trader;
        t.index = index;
        uint256 orderId = ++orderCounter;
        pending[orderId] = Pending(PendingMarketOrder(block.number, t.openPrice, uint32(slippageP), t, 10000), 0, true);
        emit PriceRequestedV2(orderId, 0, bytes32(uint256(t.pairIndex)), block.timestamp);
        emit MarketOpenOrderInitiated(orderId, trader, t.pairIndex);
    }

    function closeTradeMarket(uint16 pairIndex, uint8 index, uint16 closePercentage, uint192 marketPrice, uint32 slippageP) external {
        address trader = _msgSender();
        uint256 tradeId = tradeIds[trader][pairIndex][index];
        if (tradeId == 0) revert NoTradeFound(trader, pairIndex, index);
        OpenTrade storage o = trades[tradeId];
        if (o.closing) revert AlreadyMarketClosed(trader, pairIndex, index);
        if (closePercentage == 0 || closePercentage > 10000) revert WrongParams();
        o.closing = true;
        uint256 orderId = ++orderCounter;
        pending[orderId] = Pending(PendingMarketOrder(block.number, marketPrice, slippageP, o.t, closePercentage), tradeId, true);
        emit PriceRequestedV2(orderId, 1, bytes32(uint256(pairIndex)), block.timestamp);
        emit MarketCloseOrderInitiatedV2(orderId, tradeId, trader, pairIndex, closePercentage);
    }

    function updateTp(uint16 pairIndex, uint8 index, uint192 newTp) external {
        address trader = _msgSender();
        uint256 tradeId = tradeIds[trader][pairIndex][index];
        if (tradeId == 0) revert NoTradeFound(trader, pairIndex, index);
        trades[tradeId].t.tp = newTp;
        emit TpUpdated(tradeId, trader, pairIndex, index, newTp);
    }

    function updateSl(uint16 pairIndex, uint8 index, uint192 newSl) external {
        address trader = _msgSender();
        uint256 tradeId = tradeIds[trader][pairIndex][index];
        if (tradeId == 0) revert NoTradeFound(trader, pairIndex, index);
        trades[tradeId].t.sl = newSl;
        emit SlUpdated(tradeId, trader, pairIndex, index, newSl);
    }

    function openTradeMarketTimeout(uint256 orderId) external {
        Pending storage p = pending[orderId];
        if (!p.active || p.tradeId != 0) revert NoTradeToTimeoutFound(orderId);
        if (p.order.trade.trader != _msgSender()) revert NotYourOrder(orderId, _msgSender());
        if (block.number < p.order.block + marketOrdersTimeout) revert WaitTimeout(orderId);
        p.active = false;
        require(usdc.transfer(p.order.trade.trader, p.order.trade.collateral));
        emit MarketOpenTimeoutExecutedV2(orderId, p.order);
    }

    function closeTradeMarketTimeout(uint256 orderId, bool retry) external {
        Pending storage p = pending[orderId];
        if (!p.active || p.tradeId == 0) revert NoTradeToTimeoutFound(orderId);
        if (p.order.trade.trader != _msgSender()) revert NotYourOrder(orderId, _msgSender());
        if (block.number < p.order.block + marketOrdersTimeout) revert WaitTimeout(orderId);
        p.active = false;
        trades[p.tradeId].closing = false;
        emit MarketCloseTimeoutExecutedV2(orderId, p.tradeId, p.order);
        if (retry) {
            Trade memory t = p.order.trade;
            this.closeTradeMarketFor(t.trader, t.pairIndex, t.index, p.order.percentage, p.order.wantedPrice, p.order.slippageP);
        }
    }

    // the retry of a timed-out close, on the trader's behalf (only from this contract)
    function closeTradeMarketFor(address trader, uint16 pairIndex, uint8 index, uint16 percentage, uint192 price, uint32 slippageP) external {
        require(msg.sender == address(this), "internal");
        delegatedTrader = trader;
        this.closeTradeMarket(pairIndex, index, percentage, price, slippageP);
        delegatedTrader = address(0);
    }

    // -- the keeper (stands in for the oracle and Ostium's automation) ----------------------

    function keeperExecute(uint256 orderId, uint192 price) external onlyGov {
        Pending storage p = pending[orderId];
        require(p.active, "no such pending order");
        p.active = false;
        Trade memory t = p.order.trade;
        if (p.tradeId == 0) {
            uint256 slip = uint256(p.order.wantedPrice) * p.order.slippageP / 10000;
            bool tooFar = t.buy ? price > p.order.wantedPrice + slip : price + slip < p.order.wantedPrice;
            if (tooFar) {
                require(usdc.transfer(t.trader, t.collateral));
                callbacks.openCanceled(orderId, t.trader, t.pairIndex, 2); // 2: slippage
                return;
            }
            uint256 notionalUsd = t.collateral * t.leverage / 100;
            uint256 fee = notionalUsd * pairs[t.pairIndex].openFeeP / 1e8;
            t.collateral -= fee;
            t.openPrice = price;
            uint256 size = notionalUsd * 1e30 / price;
            uint256 tradeId = ++tradeCounter;
            trades[tradeId] = OpenTrade(t, size, block.number, true, false);
            tradeIds[t.trader][t.pairIndex][t.index] = tradeId;
            callbacks.opened(orderId, tradeId, t, size, fee);
        } else {
            _close(orderId, p.tradeId, price, 255, p.order.percentage);
        }
    }

    function keeperCancel(uint256 orderId, uint8 reason) external onlyGov {
        Pending storage p = pending[orderId];
        require(p.active, "no such pending order");
        p.active = false;
        Trade memory t = p.order.trade;
        if (p.tradeId == 0) {
            require(usdc.transfer(t.trader, t.collateral));
            callbacks.openCanceled(orderId, t.trader, t.pairIndex, reason);
        } else {
            trades[p.tradeId].closing = false;
            callbacks.closeCanceled(orderId, p.tradeId, t.trader, t.pairIndex, t.index, reason);
        }
    }

    // a take profit (orderType 0) or stop loss (1) resting on the trade, triggered at price
    function keeperTrigger(uint256 tradeId, uint8 orderType, uint192 price) external onlyGov {
        OpenTrade storage o = trades[tradeId];
        require(o.active && !o.closing, "no such open trade");
        uint256 orderId = ++orderCounter;
        _close(orderId, tradeId, price, orderType, 10000);
    }

    // closes `percentage` (x100) of the trade: that share of its collateral and size, with the
    // rollover that share accrued since the trade opened, as the SDK computes it from the
    // subgraph: (acc now - acc at open) x collateral x leverage, acc = rolloverFeePerBlock x blocks
    function _close(uint256 orderId, uint256 tradeId, uint192 price, uint8 orderType, uint16 percentage) internal {
        OpenTrade storage o = trades[tradeId];
        Trade memory t = o.t;
        uint256 collateral = t.collateral * percentage / 10000;
        uint256 notional = percentage == 10000 ? o.notional : o.notional * percentage / 10000;
        int256 rollover = int256(collateral * t.leverage * pairs[t.pairIndex].rolloverFeePerBlock * (block.number - o.openBlock) / 100 / 1e18);
        int256 move = int256(uint256(price)) - int256(uint256(t.openPrice));
        int256 pnl = int256(notional) * (t.buy ? move : -move) / 1e30;
        int256 back = int256(collateral) + pnl - rollover;
        uint256 sent = back > 0 ? uint256(back) : 0;
        int256 percentProfit = pnl * 1e8 / int256(collateral);
        if (percentage == 10000) {
            o.active = false;
            delete tradeIds[t.trader][t.pairIndex][t.index];
        } else {
            o.t.collateral -= collateral;
            o.notional -= notional;
            o.closing = false;
        }
        if (sent > 0) require(usdc.transfer(t.trader, sent));
        callbacks.closed(orderId, tradeId, t.trader, orderType, price, percentProfit, sent, rollover, percentage);
    }

    // -- views for the subgraph stand-in ----------------------------------------------------

    function tradeOf(uint256 tradeId) external view returns (Trade memory t, uint256 notional, uint256 openBlock, bool active, bool closing) {
        OpenTrade storage o = trades[tradeId];
        return (o.t, o.notional, o.openBlock, o.active, o.closing);
    }

    function pendingOf(uint256 orderId) external view returns (PendingMarketOrder memory order, uint256 tradeId, bool active) {
        Pending storage p = pending[orderId];
        return (p.order, p.tradeId, p.active);
    }
}
