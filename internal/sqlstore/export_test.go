package sqlstore

// RebindDollar is rebindDollar, for the external tests.
var RebindDollar = rebindDollar
