/**
 * Every storefront operation of `schema/operations/*.graphql` by SDK method name. The client gets
 * one typed method per entry; a test checks that every generated document is listed here, in the
 * right group, under its operation's name.
 */
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import {
  AddAddressDocument,
  AddToCartDocument,
  CartUpdatedDocument,
  CheckoutDocument,
  ClearCartDocument,
  MyCartDocument,
  RemoveFromCartDocument,
  UpdateCartItemDocument,
  BrowseProductsDocument,
  CancelOrderDocument,
  MeDocument,
  MyNotificationsDocument,
  MyOrdersDocument,
  OrderDocument,
  OrderNotificationsDocument,
  OrderUpdatedDocument,
  PlaceOrderDocument,
  ProductDocument,
  RemoveAddressDocument,
  SalesSummaryDocument,
  SalesUpdatedDocument,
  SearchProductsDocument,
  SetDefaultAddressDocument,
  StockLevelChangedDocument,
  TopProductsDocument,
  UpdateAddressDocument,
  UpdateMyProfileDocument,
} from './generated/operations.ts';

/** Queries and mutations: each becomes a method returning a promise of the typed `data`. */
export const requestDocuments = {
  /** Browse the catalogue, ordered by sku, a page at a time: pass `pageInfo.endCursor` as `after` for the next page. */
  browseProducts: BrowseProductsDocument,
  /** Search the catalogue: `filter.search` matches the name or sku (case-insensitive); status and a price range narrow it. */
  searchProducts: SearchProductsDocument,
  /** One product with its description and current stock; `product` is null for an unknown sku. */
  product: ProductDocument,
  /** Place an order for the signed-in customer (PENDING at first); reuse `input.idempotencyKey` to retry safely. */
  placeOrder: PlaceOrderDocument,
  /** Cancel one of my orders before it ships: the stock is released and a payment refunded. */
  cancelOrder: CancelOrderDocument,
  /** My orders, newest first, a page at a time. Needs a token. */
  myOrders: MyOrdersDocument,
  /** One of my orders with its timeline, payment and shipment; `order` is null for an unknown id. */
  order: OrderDocument,
  /** My profile with my saved addresses, the default first; created from my token the first time. Needs a token. */
  me: MeDocument,
  /** Change my name, e-mail, phone or notification preferences: a field left out stays, "" clears it. */
  updateMyProfile: UpdateMyProfileDocument,
  /** Save a new address (at most 20); the first one, or one with `isDefault: true`, becomes the default. */
  addAddress: AddAddressDocument,
  /** Replace the fields of one of my saved addresses. */
  updateAddress: UpdateAddressDocument,
  /** Delete one of my saved addresses; if it was the default, the oldest remaining one becomes it. */
  removeAddress: RemoveAddressDocument,
  /** Make one of my saved addresses the default. */
  setDefaultAddress: SetDefaultAddressDocument,
  /** My cart, shared by every tab and device, with current prices, live stock and warnings; empty when I have none. */
  myCart: MyCartDocument,
  /** Add units of a sku to my cart (to its line when it is there already); answers the cart. */
  addToCart: AddToCartDocument,
  /** Set the quantity of a line of my cart; 0 removes it. */
  updateCartItem: UpdateCartItemDocument,
  /** Remove a line from my cart. */
  removeFromCart: RemoveFromCartDocument,
  /** Empty my cart. */
  clearCart: ClearCartDocument,
  /** Place my cart as an order (prices from the catalogue, not the cart); reuse `input.idempotencyKey` to retry safely. */
  checkout: CheckoutDocument,
  /** My messages (e-mail, SMS) about my orders, newest first, a page at a time: sent, skipped (and why) or failed. Needs a token. */
  myNotifications: MyNotificationsDocument,
  /** The messages about one of my orders, oldest first; `order` is null for an unknown id. */
  orderNotifications: OrderNotificationsDocument,
  /** Admin only: the sales of the hours or days that start in [from, to), oldest first, one bucket each (zeros where nothing happened). */
  salesSummary: SalesSummaryDocument,
  /** Admin only: the products with the most units sold in the hours that start in [from, to), most first, with their names. */
  topProducts: TopProductsDocument,
} as const;

/** Subscriptions: each becomes a method returning an async iterator of the typed `data`. */
export const subscriptionDocuments = {
  /** Follow the stock of 1 to 100 skus (no token needed): each sku's current level first, then every change. */
  stockLevelChanged: StockLevelChangedDocument,
  /** Follow one of my orders: the order as it is now, then after every change of its status or timeline. */
  orderUpdated: OrderUpdatedDocument,
  /** Follow my cart: as it is now, then after every change from any tab or device. */
  cartUpdated: CartUpdatedDocument,
  /** Admin only: follow sales: the current hour's or day's bucket first, then every bucket as it changes (a past one too). */
  salesUpdated: SalesUpdatedDocument,
} as const;

/** The `data` type of a typed document. */
export type ResultOf<D> = D extends TypedDocumentNode<infer R, any> ? R : never;

/** The variables type of a typed document. */
export type VariablesOf<D> = D extends TypedDocumentNode<any, infer V> ? V : never;

/** The SDK's method names of queries and mutations. */
export type RequestName = keyof typeof requestDocuments;

/** The SDK's method names of subscriptions. */
export type SubscriptionName = keyof typeof subscriptionDocuments;
