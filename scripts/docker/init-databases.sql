-- Run once by the postgres image on an empty data volume (docker-compose.yml mounts it into
-- /docker-entrypoint-initdb.d). One database per service, named <DB_PREFIX>_<service> with the
-- default prefix; `npm run db:create` does the same on a machine without Docker.
CREATE DATABASE swiftcart_product;
CREATE DATABASE swiftcart_inventory;
CREATE DATABASE swiftcart_order;
CREATE DATABASE swiftcart_payment;
CREATE DATABASE swiftcart_shipment;
CREATE DATABASE swiftcart_customer;
CREATE DATABASE swiftcart_cart;
CREATE DATABASE swiftcart_notification;
CREATE DATABASE swiftcart_analytics;
